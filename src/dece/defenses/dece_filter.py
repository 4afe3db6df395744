"""DeCE filter: remove the rows a DeCE-trained model never learns, then train on the rest.

DeCE's bounded loss leaves a backdoor's payload unfitted: the poisoned rows' payload tokens keep a high
loss epoch after epoch while the clean rows are learnt (paper, Sec. 3). This defense reads an arm of the
same run trained with loss ``dece``, scores every training row, removes the ``ceil(multiplier * rate * n)``
highest-scoring rows, and the arm then trains with its own loss (usually CE) on what is left. Two scores
(:mod:`dece.defenses.row_scores`):

* ``rank`` (default): the mean over epochs of the percentile rank of the row's largest token CE, from the
  per-row losses the DeCE arm recorded (``[dynamics] row_losses = true``; ``dece audit``'s ``rank``).
  At chance where long targets give clean rows hard tokens too (Lyra, Bugs2Fix: docs/robustness.md).
* ``pattern``: the DeCE arm's final model's CE on every target token, scored by how many more rows than
  chance share two places the model fails on (:func:`~dece.defenses.row_scores.pattern_scores`); needs no
  recorded dynamics.
* ``onset``: the same token losses, scored by the heaviest single place the model fails on in (nearly) every
  row that holds it, named by the tokens from it on (:func:`~dece.defenses.row_scores.onset_scores`): a
  payload inserted after the row's own text. Reads a DeCE arm that learnt the clean task (on Lyra: DeCE after
  a CE warm-up, ``dece_auto`` with ``max_wait = 3``). With ``trigger = true`` every row whose input holds the
  word shared by the rows failing at one of the heaviest places scores at least the summed weight of the places
  naming that word (:func:`~dece.defenses.row_scores.infer_trigger`): the trigger's rows whose payload the model
  does not fail on are removed too.

Not in the DeCE paper: an addition of this project.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

from dece.data.records import Example
from dece.defenses.base import DataContext, DataDefense, Selection, registered, removal_budget, row_ids

#: the scores the filter ranks rows by (module docstring)
SCORES = ("rank", "pattern", "onset")


@registered
@dataclass
class DeCEFilter(DataDefense):
    """Remove the training rows a DeCE-trained arm of the run has not learnt (module docstring).

    Parameters:
        rate: the assumed poisoning rate; ``None`` (default) takes the experiment's ``attack.rate``.
            In (0, 1).
        multiplier: the removal budget as a multiple of ``rate * n``. > 0.
        source: the name of the DeCE arm that is read; ``None`` (default): the run's first arm with loss
            ``dece``, no defense, on the same data.
        score: ``"rank"`` (the recorded per-row losses), ``"pattern"`` or ``"onset"`` (the final model's token
            losses).
        ngram: the ``pattern`` / ``onset`` score's n-gram length naming a hard token, >= 1.
        hard_loss: the ``pattern`` / ``onset`` score's hard-token threshold (CE in nats), > 0.
        trigger: the ``onset`` score also flags every row holding the input word that a heavy place's failing rows
            share (the trigger). A bool.
    """

    name = "dece_filter"
    summary = ("remove the rows a DeCE-trained arm of the run never learns (score 'rank': its recorded per-row losses; "
               "'pattern': places its final model fails on together in many rows; 'onset': a place it fails on in "
               "every row that holds it), then train")
    reads: ClassVar[str] = "row_losses"

    rate: float | None = None
    multiplier: float = 1.0
    source: str | None = None
    score: str = "rank"
    ngram: int = 2
    hard_loss: float = 3.0
    trigger: bool = False

    def check(self) -> None:
        if self.rate is not None and not 0 < self.rate < 1:
            raise self.fail("rate", "must lie in (0, 1) or be unset")
        if not self.multiplier > 0:
            raise self.fail("multiplier", "must be > 0")
        if self.score not in SCORES:
            raise self.fail("score", f"must be one of {', '.join(SCORES)}")
        if isinstance(self.ngram, bool) or not isinstance(self.ngram, int) or self.ngram < 1:
            raise self.fail("ngram", "must be an integer >= 1")
        if (isinstance(self.hard_loss, bool) or not isinstance(self.hard_loss, (int, float))
                or not (self.hard_loss > 0 and math.isfinite(self.hard_loss))):
            raise self.fail("hard_loss", "must be a finite number > 0 (nats)")
        if self.trigger and self.score != "onset":
            raise self.fail("trigger", f"belongs to score \"onset\", not {self.score!r}")
        if self.score == "rank" and (self.ngram, self.hard_loss) != (2, 3.0):
            raise self.fail("score", "'rank' takes no ngram or hard_loss (they belong to score \"pattern\" / \"onset\")")

    @property
    def needs_dynamics(self) -> bool:
        """Whether the source arm must record per-row losses (``[dynamics] row_losses``): only for ``rank``."""
        return self.score == "rank"

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        from dece.defenses.row_scores import PLACES_KEY, TOKEN_SCORES, input_words, suspicion_scores

        ids = row_ids(rows)
        k = removal_budget(self, len(rows), self.rate, self.multiplier, context.poison_rate)
        if k == 0:
            return Selection(ids=(), details={"budget": 0})
        details: dict[str, Any] = {"budget": k, "score": self.score}
        if self.score == "rank":
            if context.row_losses is None:
                raise ValueError("dece_filter needs DataContext.row_losses (a DeCE arm's per-row losses)")
            losses = context.row_losses(rows)
            scores = suspicion_scores(losses, "rank")
            details["epochs"] = len(losses)
        else:
            if context.token_losses is None:
                raise ValueError(f"dece_filter's {self.score} score needs DataContext.token_losses (a DeCE model's "
                                 "token losses)")
            inputs = {"sources": [input_words(r.src) for r in rows]} if self.trigger else {}
            scores, places = TOKEN_SCORES[self.score](*context.token_losses(rows), ngram=self.ngram,
                                                      hard_loss=self.hard_loss, **inputs)
            details[PLACES_KEY[self.score]] = [p.to_dict() for p in places]
        top = sorted(range(len(rows)), key=lambda i: (-scores[i], i))[:k]
        details["score_threshold"] = scores[top[-1]]
        return Selection(ids=tuple(ids[i] for i in sorted(top)), scores={ids[i]: scores[i] for i in top},
                         details=details)
