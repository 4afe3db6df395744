"""Batched, deterministic generation (greedy or beam search) from source strings to output strings."""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedTokenizerBase

from dece.models.encoding import PadCollator, encode_sources


def generate(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    sources: Sequence[str],
    *,
    is_encoder_decoder: bool,
    max_new_tokens: int,
    batch_size: int = 32,
    num_beams: int = 1,
    max_source_length: int | None = None,
    progress: bool | None = None,
) -> list[str]:
    """One output string per source, in order.

    Sources are encoded exactly as in training (:func:`dece.models.encode_sources`, truncated to
    ``max_source_length`` tokens when given), batched by length, and decoded greedily
    (``num_beams=1``) or by beam search, never sampled, so the result is deterministic. Decoder-only
    prompts are left-padded and only the continuation is returned. Each output stops at the first
    ``eos``; special tokens are dropped and nothing else is cleaned, so whitespace survives.
    ``progress``: a progress bar on stderr (None: yes, except in the worker processes of a run, see
    :data:`PROGRESS_BARS`, so that bars do not interleave with the workers' log lines).
    """
    if max_new_tokens <= 0 or batch_size <= 0 or num_beams <= 0:
        raise ValueError("max_new_tokens, batch_size and num_beams must be positive")
    encoded = encode_sources(tokenizer, sources, max_source_length, is_encoder_decoder)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    collate = PadCollator(tokenizer.pad_token_id, padding_side="right" if is_encoder_decoder else "left")
    config = GenerationConfig(
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=model.generation_config.decoder_start_token_id if is_encoder_decoder else None,
    )
    outputs: list[str] = [""] * len(encoded)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), tqdm(total=len(encoded), desc="generate", unit="row", disable=_bar_disabled(progress)) as bar:
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = collate([{"input_ids": encoded[i], "attention_mask": [1] * len(encoded[i])} for i in rows])
                batch = {k: v.to(model.device) for k, v in batch.items()}
                generated = model.generate(**batch, generation_config=config)
                # seq2seq output starts with the decoder-start token; decoder-only output repeats the prompt
                skip = 1 if is_encoder_decoder else batch["input_ids"].shape[1]
                for i, ids in zip(rows, generated[:, skip:].tolist()):
                    outputs[i] = _decode(tokenizer, ids)
                bar.update(len(rows))
    finally:
        model.train(was_training)
    return outputs


def _decode(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    if tokenizer.eos_token_id in ids:
        ids = ids[: ids.index(tokenizer.eos_token_id)]
    return tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)


#: False in the worker processes of a run (``dece.experiments.runner``): no progress bars there
PROGRESS_BARS = True


def _bar_disabled(progress: bool) -> bool:
    """tqdm's ``disable`` for ``progress`` (None: :data:`PROGRESS_BARS`)."""
    return not (PROGRESS_BARS if progress is None else progress)
