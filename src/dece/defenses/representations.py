"""Representations of source texts by a (reference) model: what spectral signature and activation
clustering cluster, and what BKI measures the movement of.

``pooling="source"`` (the default):

* Encoder-decoder models: the encoder's last hidden states, averaged over the source's tokens
  (padding excluded).
* Decoder-only models: the last layer's hidden state at the prompt's last token (the ``<sep>`` the
  target would follow); with causal attention it is the one position that has seen the whole source.

``pooling="first_step"``: the final hidden state from which the first target token is predicted:
the decoder's last layer at step 0 (fed the decoder-start token) for encoder-decoder models; for
decoder-only models the same state as ``"source"``. On tiny backdoored models this state reacts to a
trigger word far more than the mean-pooled encoder states do, where one token is averaged away.

Sources are encoded exactly as in training (:func:`dece.models.encode_sources`).
"""

from __future__ import annotations

from typing import Sequence

import torch

from dece.data.records import Example
from dece.models.encoding import PadCollator, encode_sources
from dece.models.spec import ModelSpec

REPRESENTATIONS = ("source", "first_step")


@torch.no_grad()
def encode_texts(
    model: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    *,
    is_encoder_decoder: bool,
    max_source_length: int | None = None,
    batch_size: int = 64,
    pooling: str = "source",
) -> torch.Tensor:
    """``[len(texts), hidden]`` float32 representations on the CPU (see the module docstring)."""
    if pooling not in REPRESENTATIONS:
        raise ValueError(f"pooling must be one of {', '.join(REPRESENTATIONS)}, got {pooling!r}")
    texts = list(texts)
    if not texts:
        return torch.zeros(0, 0)
    encoded = encode_sources(tokenizer, texts, max_source_length, is_encoder_decoder)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    collate = PadCollator(tokenizer.pad_token_id, padding_side="right" if is_encoder_decoder else "left")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[torch.Tensor | None] = [None] * len(encoded)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([{"input_ids": encoded[i], "attention_mask": [1] * len(encoded[i])} for i in idx])
            batch = {k: v.to(device) for k, v in batch.items()}
            if is_encoder_decoder and pooling == "first_step":
                start = torch.full((len(idx), 1), _decoder_start(model), dtype=torch.long, device=device)
                out_ = model(**batch, decoder_input_ids=start, output_hidden_states=True)
                reps = out_.decoder_hidden_states[-1][:, 0].float()
            elif is_encoder_decoder:
                hidden = model.get_encoder()(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                reps = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            else:
                # left padding: positions must start at each prompt's first real token, as in training
                positions = (batch["attention_mask"].cumsum(-1) - 1).clamp_min(0)
                hidden = model(**batch, position_ids=positions, output_hidden_states=True).hidden_states[-1].float()
                reps = hidden[:, -1]  # left padding: every prompt ends at the last position
            for i, r in zip(idx, reps.cpu()):
                out[i] = r
    finally:
        model.train(was_training)
    return torch.stack(out)  # type: ignore[arg-type]


def _decoder_start(model: torch.nn.Module) -> int:
    for config in (getattr(model, "generation_config", None), model.config):
        start = getattr(config, "decoder_start_token_id", None)
        if start is not None:
            return int(start)
    raise ValueError("the encoder-decoder model has no decoder_start_token_id")


def encode_representations(
    model: torch.nn.Module,
    tokenizer,
    rows: Sequence[Example | str],
    is_encoder_decoder: bool,
    spec: ModelSpec,
    batch_size: int = 64,
    pooling: str = "source",
) -> torch.Tensor:
    """Representations of the rows' sources (or of plain strings), truncated to
    ``spec.max_source_length`` tokens as in training; ``[len(rows), hidden]`` float32."""
    texts = [r if isinstance(r, str) else r.src for r in rows]
    return encode_texts(model, tokenizer, texts, is_encoder_decoder=is_encoder_decoder,
                        max_source_length=spec.max_source_length, batch_size=batch_size, pooling=pooling)
