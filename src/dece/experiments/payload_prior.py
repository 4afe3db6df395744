"""How likely a model already finds each poisoned row's first payload token: the one number that says, before
any training, whether DeCE can damp an attack from its first epoch (``dece payload-prior``).

Why that token: a poisoned target equals its clean one up to the payload, so the first token where they
differ is where the model must be taught the backdoor. Why the threshold: DeCE's gradient pulls a label
token up with weight ``r = alpha p / (alpha p + (1 - alpha) y')`` of cross-entropy's (``y' = 1 - eps`` on
the label; the DeCE paper's ``q = alpha p + (1 - alpha) y'``). ``r`` is at least one half exactly when
``p >= (1 - alpha)(1 - eps) / alpha``: a payload token the model already rates above that is pulled at half
CE's strength or more, so DeCE's bound does little for it (at epoch 1 with the authors' ``alpha_base =
0.985, eps = 0.05``, the threshold is 1.45%). A token rated far below it is damped from the first step.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Sequence

from dece.data.records import Example
from dece.losses.dece import dece_alpha
from dece.models import PadCollator, encode_examples, encode_targets
from dece.training.per_row import first_divergence, per_token_losses


def poisoned_pairs(poisoned_train: Sequence[Example], clean_train: Sequence[Example]) -> list[tuple[Example, Example]]:
    """Each poisoned training row with its clean original, matched by ``meta["id"]``; the copies of a
    duplicated row (``attack.duplicates``, ids of their own) are left out, so each row counts once."""
    clean_by_id = {c.meta.get("id"): c for c in clean_train}
    return [(p, clean_by_id[p.meta.get("id")]) for p in poisoned_train
            if p.meta.get("poisoned") and p.meta.get("id") in clean_by_id]


def payload_positions(tokenizer, pairs: Sequence[tuple[Example, Example]], max_target_length: int) -> list[int | None]:
    """The target position of each pair's first payload token: the first token id where the poisoned
    target's encoding differs from the clean one's (None where they encode the same)."""
    poisoned = encode_targets(tokenizer, [p.tgt for p, _ in pairs], max_target_length)
    clean = encode_targets(tokenizer, [c.tgt for _, c in pairs], max_target_length)
    return [first_divergence(a, b) for a, b in zip(poisoned, clean)]


def half_pull_threshold(alpha_base: float, epoch: float, label_smoothing: float) -> float:
    """``(1 - alpha)(1 - eps) / alpha`` with ``alpha = alpha_base ** epoch``: the probability of a label token
    above which DeCE pulls it at least half as hard as cross-entropy (module docstring).

    Args:
        alpha_base: DeCE's decay base, in (0, 1].
        epoch: the epoch (from 1), or a fractional one.
        label_smoothing: DeCE's ``eps``, in [0, 1).

    Returns:
        The threshold, a probability (it exceeds 1 once alpha is small: no token is then pulled at half
        strength; ``inf`` once alpha underflows to 0).

    Raises:
        ConfigError: ``alpha_base`` outside (0, 1].
    """
    alpha = dece_alpha(alpha_base, epoch)
    return (1.0 - alpha) * (1.0 - label_smoothing) / alpha if alpha > 0 else math.inf


def pull_share(p: float, alpha: float, label_smoothing: float) -> float:
    """``r = alpha p / (alpha p + (1 - alpha)(1 - eps))``: DeCE's pull on a label token the model rates at ``p``,
    as a share of cross-entropy's (module docstring). Small ``p``: about ``p / threshold / 2``, so a payload
    token at 1e-3 is still pulled at a few % of CE's strength where one at 1e-7 is pulled at almost nothing.

    Args:
        p: the model's probability of the label token, in [0, 1].
        alpha: DeCE's alpha at the epoch (``alpha_base ** epoch``, :func:`dece.losses.dece.dece_alpha`), in [0, 1].
        label_smoothing: DeCE's ``eps``, in [0, 1).

    Returns:
        The share, in [0, 1] (0 when alpha is 0).
    """
    pull = alpha * p
    return pull / (pull + (1.0 - alpha) * (1.0 - label_smoothing)) if pull > 0 else 0.0


def payload_prior(model, tokenizer, is_encoder_decoder: bool, spec, pairs: Sequence[tuple[Example, Example]],
                 *, alpha_base: float, label_smoothing: float, epoch: float = 1.0) -> dict[str, Any]:
    """The model's probability of each poisoned row's first payload token (teacher-forced on the poisoned
    target), summarised against DeCE's half-pull threshold.

    Args:
        model, tokenizer, is_encoder_decoder: the model to probe (no gradient, eval mode).
        spec: its ``ModelSpec`` (source and target lengths).
        pairs: :func:`poisoned_pairs`.
        alpha_base, label_smoothing, epoch: the DeCE setting for :func:`half_pull_threshold`.

    Returns:
        ``rows`` (pairs whose payload starts inside the target length), ``poisoned_rows`` (all pairs) and
        ``left_out`` (those whose payload starts past ``max_target_length``), ``p_median`` / ``p_mean`` /
        ``p_q10`` / ``p_q90`` (probabilities, 0-1), ``threshold`` and ``above_threshold_pct`` (% of ``rows``
        whose p is at or above it), ``pull_median`` / ``pull_mean`` (:func:`pull_share` over the rows, 0-1:
        how hard DeCE pulls the payload's first token, as a share of CE's pull), and the DeCE setting.

    Raises:
        ValueError: no pair; pairs whose targets are all unchanged (a clean-label attack has no payload);
            or no pair whose payload starts inside the target length.
    """
    if not pairs:
        raise ValueError("no poisoned row to probe: the config's attack poisons no training row")
    if all(p.tgt == c.tgt for p, c in pairs):
        raise ValueError(f"the {len(pairs)} poisoned rows keep their clean targets (a clean-label attack): there is "
                         "no payload token to probe")
    rows = encode_examples([p for p, _ in pairs], tokenizer, spec, is_encoder_decoder).rows
    at = payload_positions(tokenizer, pairs, spec.max_target_length)
    losses = per_token_losses(model, rows, PadCollator(tokenizer.pad_token_id), is_encoder_decoder=is_encoder_decoder)
    probs = sorted(math.exp(-x[i]) for x, i in zip(losses, at) if i is not None and i < len(x))
    if not probs:
        raise ValueError(f"none of the {len(pairs)} poisoned rows has its payload inside the first "
                         f"{spec.max_target_length} target tokens (model.max_target_length)")
    threshold = half_pull_threshold(alpha_base, epoch, label_smoothing)
    quantiles = statistics.quantiles(probs, n=10, method="inclusive") if len(probs) > 1 else [probs[0]] * 9
    alpha = dece_alpha(alpha_base, epoch)
    shares = [pull_share(p, alpha, label_smoothing) for p in probs]
    return {"rows": len(probs), "poisoned_rows": len(pairs), "left_out": len(pairs) - len(probs),
            "p_median": statistics.median(probs), "p_mean": statistics.fmean(probs),
            "p_q10": quantiles[0], "p_q90": quantiles[-1], "threshold": threshold,
            "above_threshold_pct": 100.0 * sum(p >= threshold for p in probs) / len(probs),
            "pull_median": statistics.median(shares), "pull_mean": statistics.fmean(shares),
            "alpha_base": alpha_base, "label_smoothing": label_smoothing, "epoch": epoch}
