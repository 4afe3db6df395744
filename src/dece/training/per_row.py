"""Per-token and per-row losses of a model on encoded rows (no gradient): the raw material of the
learning-dynamics plots and of the poisoned-row audit."""

from __future__ import annotations

from typing import Sequence

import torch

from dece.losses import CELoss
from dece.training.trainer import shift_for_causal_lm


def per_token_losses(
    model: torch.nn.Module,
    rows: Sequence[dict],
    collate,
    *,
    is_encoder_decoder: bool,
    batch_size: int = 32,
) -> list[list[float]]:
    """Cross-entropy of every target token of every row, in order (a list per row).

    ``rows`` are encoded rows (``input_ids``, ``attention_mask``, ``labels``); CE is unbounded, so it
    shows how far a model has fitted a row whatever loss it was trained with. Rows are batched by length
    (less padding: the pass over every training row of ``[dynamics] row_losses`` costs less) and returned
    in the order given."""
    return per_token_losses_and_ids(model, rows, collate, is_encoder_decoder=is_encoder_decoder,
                                    batch_size=batch_size)[0]


@torch.no_grad()
def per_token_losses_and_ids(
    model: torch.nn.Module,
    rows: Sequence[dict],
    collate,
    *,
    is_encoder_decoder: bool,
    batch_size: int = 32,
) -> tuple[list[list[float]], list[list[int]]]:
    """:func:`per_token_losses` and, aligned with them, the target token ids they are the losses of."""
    was_training = model.training
    model.eval()
    ce = CELoss(reduction="none")
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i]["input_ids"]), len(rows[i]["labels"])))
    out: list[list[float]] = [[] for _ in rows]
    out_ids: list[list[int]] = [[] for _ in rows]
    try:
        for start in range(0, len(rows), batch_size):
            chunk = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collate([rows[i] for i in chunk]).items()}
            labels = batch.pop("labels")
            if is_encoder_decoder:
                batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
                target = labels
            else:
                target = shift_for_causal_lm(labels)
            token_loss = ce(model(**batch).logits.float(), target)
            for i, losses, t in zip(chunk, token_loss.cpu(), target.cpu()):
                out[i], out_ids[i] = losses[t != -100].tolist(), t[t != -100].tolist()
    finally:
        model.train(was_training)
    return out, out_ids


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two id sequences differ (None if one is a prefix of the other
    and they have equal length)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
