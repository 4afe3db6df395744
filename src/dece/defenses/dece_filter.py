"""DeCE filter: remove the rows a DeCE-trained model never learns, then train on the rest.

DeCE's bounded loss leaves a backdoor's payload unfitted: the poisoned rows' hardest token keeps a high
loss epoch after epoch while the clean rows are learnt (paper, Sec. 3; ``dece audit``'s ``rank``
score). This defense reads those per-row losses from an arm of the same run trained with loss ``dece``
and ``[dynamics] row_losses = true``, scores every row by the mean over epochs of its loss's
percentile rank (:func:`dece.defenses.row_scores.suspicion_scores`, ``rank``, on the largest token CE), and removes
the ``ceil(multiplier * rate * n)`` highest-scoring rows; the arm then trains with its own loss
(usually CE) on what is left. Not in the DeCE paper: an addition of this project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from dece.data.records import Example
from dece.defenses.base import DataContext, DataDefense, Selection, registered, removal_budget, row_ids


@registered
@dataclass
class DeCEFilter(DataDefense):
    """Remove the training rows a DeCE-trained arm of the run has not learnt (module docstring).

    Parameters:
        rate: the assumed poisoning rate; ``None`` (default) takes the experiment's ``attack.rate``.
            In (0, 1).
        multiplier: the removal budget as a multiple of ``rate * n``. > 0.
        source: the name of the DeCE arm whose per-row losses are read; ``None`` (default): the run's
            first arm with loss ``dece``, no defense, on the same data.
    """

    name = "dece_filter"
    summary = "remove the rows a DeCE-trained arm of the run never learns (dece audit's rank score), then train"
    reads: ClassVar[str] = "row_losses"

    rate: float | None = None
    multiplier: float = 1.0
    source: str | None = None

    def check(self) -> None:
        if self.rate is not None and not 0 < self.rate < 1:
            raise self.fail("rate", "must lie in (0, 1) or be unset")
        if not self.multiplier > 0:
            raise self.fail("multiplier", "must be > 0")

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        from dece.defenses.row_scores import suspicion_scores

        if context.row_losses is None:
            raise ValueError("dece_filter needs DataContext.row_losses (a DeCE arm's per-row losses)")
        ids = row_ids(rows)
        k = removal_budget(self, len(rows), self.rate, self.multiplier, context.poison_rate)
        if k == 0:
            return Selection(ids=(), details={"budget": 0})
        losses = context.row_losses(rows)
        scores = suspicion_scores(losses, "rank")
        top = sorted(range(len(rows)), key=lambda i: (-scores[i], i))[:k]
        return Selection(ids=tuple(ids[i] for i in sorted(top)), scores={ids[i]: scores[i] for i in top},
                         details={"budget": k, "epochs": len(losses), "score_threshold": scores[top[-1]]})
