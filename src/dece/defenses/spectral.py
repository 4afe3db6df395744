"""Spectral signature (Tran, Li & Madry, NeurIPS 2018): poisoned rows leave a trace along the top
singular direction of the (centred) representations, so rows with the largest projection on it are
removed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from dece.data.records import Example
from dece.defenses.base import DataContext, RepresentationDefense, Selection, registered, removal_budget, row_ids


def spectral_scores(reps: torch.Tensor, components: int = 1) -> torch.Tensor:
    """Outlier score per row: the squared projection of the centred representation on the top
    ``components`` right singular vectors (summed)."""
    centred = reps.double() - reps.double().mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return (centred @ vh[:components].T).pow(2).sum(1).float()


@registered
@dataclass
class SpectralSignature(RepresentationDefense):
    """Score every training row by its squared projection on the top singular vector of the centred
    reference-model representations and remove the ``ceil(multiplier * rate * n)`` highest-scoring rows.
    There are no classes in generation, so all rows form one population.

    Parameters:
        rate: the assumed poisoning rate (the method assumes an upper bound on it is known);
            ``None`` (default) takes the experiment's ``attack.rate``. In (0, 1).
        multiplier: the removal budget as a multiple of ``rate * n`` (1.5 in the original paper). > 0.
        components: how many top singular directions to project on (1 in the paper). >= 1.
        representation: ``"source"`` (default: mean-pooled encoder states) or ``"first_step"`` (the
            state the first output token is predicted from); see :class:`~dece.defenses.DataDefense`.
    """

    name = "spectral_signature"
    summary = "remove the rows with the largest projection on the top singular vector of the representations"

    rate: float | None = None
    multiplier: float = 1.5
    components: int = 1

    def check(self) -> None:
        if self.rate is not None and not 0 < self.rate < 1:
            raise self.fail("rate", "must lie in (0, 1) or be unset")
        if not self.multiplier > 0:
            raise self.fail("multiplier", "must be > 0")
        if self.components < 1:
            raise self.fail("components", "must be >= 1")

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        ids = row_ids(rows)
        k = removal_budget(self, len(rows), self.rate, self.multiplier, context.poison_rate)
        if k == 0:
            return Selection(ids=(), details={"budget": 0})
        scores = spectral_scores(context.represent(rows), self.components).tolist()
        top = sorted(range(len(rows)), key=lambda i: (-scores[i], i))[:k]
        chosen = sorted(top)
        threshold = scores[top[-1]]
        return Selection(ids=tuple(ids[i] for i in chosen), scores={ids[i]: scores[i] for i in chosen},
                         details={"budget": k, "score_threshold": threshold})
