"""Pure scoring math of the poisoned-row audit (``dece audit``) and of the ``dece_filter`` defense: training
rows scored by their per-epoch losses, rankings, precision / recall at k and average precision. No file
access here; :mod:`dece.reporting.audit` reads run folders and writes the results.

Scores (higher = more suspicious). Let :math:`l_{t,i}` be row :math:`i`'s loss after epoch
:math:`t = 1..E` and :math:`r_{t,i} \\in [0, 1]` its percentile rank among all rows at that epoch
(1 = the highest loss of that epoch). Ranks, not raw losses, so every epoch weighs the same although
the losses shrink as training goes.

* ``drop``: :math:`r_{1,i} - r_{E,i}`: still hard after the first epoch, fitted later (*learned late*):
  the signal of an arm trained with CE.
* ``collapse``: :math:`\\max_t (r_{t-1,i} - r_{t,i})\\, r_{t-1,i}`: the largest one-epoch fall of a row
  that was among the hardest.
* ``rank``: :math:`\\frac{1}{E}\\sum_t r_{t,i}`: *never learned*: the signal of an arm trained with DeCE,
  whose bounded loss leaves the payload unfitted.
"""

from __future__ import annotations

import math
from typing import Sequence

from dece.errors import ConfigError

SCORES = ("drop", "collapse", "rank")


def percentile_ranks(values: Sequence[float]) -> list[float]:
    """Ranks in [0, 1] (0 = lowest, 1 = highest; ties share their mean rank; one value -> 1)."""
    n = len(values)
    if n == 1:
        return [1.0]
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        r = (i + j) / 2 / (n - 1)
        for k in range(i, j + 1):
            ranks[order[k]] = r
        i = j + 1
    return ranks


def suspicion_scores(losses: Sequence[Sequence[float]], score: str = "rank") -> list[float]:
    """Scores of the module docstring from ``losses[t][i]`` (epoch t, row i)."""
    if score not in SCORES:
        raise ConfigError(f"unknown score {score!r}; valid names: {', '.join(SCORES)}")
    if not losses:
        raise ConfigError("no per-row losses: train the arm with [dynamics] row_losses = true")
    n = len(losses[0])
    if any(len(epoch) != n for epoch in losses):
        raise ConfigError("per-row losses differ in length between epochs")
    ranks = [percentile_ranks([v if math.isfinite(v) else math.inf for v in epoch]) for epoch in losses]
    E = len(ranks)
    if score == "rank":
        return [sum(r[i] for r in ranks) / E for i in range(n)]
    if score == "drop":
        return [ranks[0][i] - ranks[-1][i] for i in range(n)]
    if E < 2:
        raise ConfigError("the 'collapse' score needs at least two epochs")
    return [max((ranks[t - 1][i] - ranks[t][i]) * ranks[t - 1][i] for t in range(1, E)) for i in range(n)]


def ranking(scores: Sequence[float]) -> list[int]:
    """Row indices from the most to the least suspicious (ties: lower index first)."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def precision_recall_at_k(order: Sequence[int], positives: set[int], k: int) -> tuple[float, float]:
    hits = sum(1 for i in order[:k] if i in positives)
    return (hits / k if k else 0.0, hits / len(positives) if positives else 0.0)


def average_precision(order: Sequence[int], positives: set[int]) -> float:
    """Mean of the precision at each poisoned row's position in the ranking."""
    if not positives:
        return 0.0
    hits, total = 0, 0.0
    for pos, i in enumerate(order, start=1):
        if i in positives:
            hits += 1
            total += hits / pos
    return total / len(positives)
