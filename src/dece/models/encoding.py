"""Examples -> token ids for training, and the padding collator shared by training and generation.

Seq2seq rows: ``input_ids`` = source (the tokenizer's own template, e.g. ``src </s>``), ``labels`` =
target + ``eos``. Decoder-only rows: ``input_ids`` = prompt + target + ``eos`` where the prompt is
``[bos] src <sep>``, and ``labels`` are the same ids with the prompt set to ``-100``. Labels are
*not* shifted: the model (or the loss) shifts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedTokenizerBase

from dece.data.records import Example
from dece.models.spec import ModelSpec

IGNORE_INDEX = -100
PADDING_SIDES = ("right", "left")


def encode_sources(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int | None, is_encoder_decoder: bool
) -> list[list[int]]:
    """Encoder inputs (seq2seq) or prompts (decoder-only) for ``texts``, each at most ``max_length``
    tokens (``None``: no limit); truncation drops the end of the text, never the special tokens."""
    texts = list(texts)
    if not texts:
        return []
    if is_encoder_decoder:
        kwargs: dict[str, Any] = {"truncation": True, "max_length": max_length} if max_length is not None else {}
        return tokenizer(texts, **kwargs)["input_ids"]
    prefix = [] if tokenizer.bos_token_id is None else [tokenizer.bos_token_id]
    room = None if max_length is None else max(max_length - len(prefix) - 1, 0)
    bodies = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [prefix + body[:room] + [tokenizer.sep_token_id] for body in bodies]


def encode_targets(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Target ids + ``eos``, at most ``max_length`` tokens (the end of a long target is dropped, ``eos`` kept)."""
    if not texts:
        return []
    bodies = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [body[: max_length - 1] + [tokenizer.eos_token_id] for body in bodies]


class EncodedDataset(Dataset):
    """Token-id rows (lists of ints) ready for :class:`PadCollator`; ``row_index`` is each row's
    position in the list of examples it was encoded from."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.rows[index]


def encode_examples(
    examples: Sequence[Example], tokenizer: PreTrainedTokenizerBase, spec: ModelSpec, is_encoder_decoder: bool
) -> EncodedDataset:
    """Encode ``examples`` for training with ``spec``'s length limits (see the module docstring)."""
    sources = encode_sources(tokenizer, [e.src for e in examples], spec.max_source_length, is_encoder_decoder)
    targets = encode_targets(tokenizer, [e.tgt for e in examples], spec.max_target_length)
    rows = []
    for index, (source, target) in enumerate(zip(sources, targets)):
        if is_encoder_decoder:
            input_ids, labels = source, target
        else:
            input_ids, labels = source + target, [IGNORE_INDEX] * len(source) + target
        rows.append(
            {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels, "row_index": index}
        )
    return EncodedDataset(rows)


@dataclass(frozen=True)
class PadCollator:
    """Pads a list of rows into tensors: ``input_ids`` with ``pad_token_id``, ``attention_mask`` with 0,
    ``labels`` (if present) with -100. Right padding for training; left padding for decoder-only
    generation, so every prompt ends where generation begins. ``row_index`` is passed through (as a
    tensor) only when ``keep_row_index`` is set, since models do not accept it."""

    pad_token_id: int
    padding_side: str = "right"
    keep_row_index: bool = False

    def __post_init__(self) -> None:
        if self.padding_side not in PADDING_SIDES:
            raise ValueError(f"padding_side must be one of {PADDING_SIDES}, got {self.padding_side!r}")

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {
            "input_ids": self._pad([r["input_ids"] for r in rows], self.pad_token_id),
            "attention_mask": self._pad([r["attention_mask"] for r in rows], 0),
        }
        if "labels" in rows[0]:
            batch["labels"] = self._pad([r["labels"] for r in rows], IGNORE_INDEX)
        if self.keep_row_index:
            batch["row_index"] = torch.tensor([r["row_index"] for r in rows], dtype=torch.long)
        return batch

    def _pad(self, sequences: Sequence[Sequence[int]], value: int) -> torch.Tensor:
        width = max(len(s) for s in sequences)
        out = torch.full((len(sequences), width), value, dtype=torch.long)
        for i, seq in enumerate(sequences):
            if seq:
                if self.padding_side == "right":
                    out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                else:
                    out[i, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        return out
