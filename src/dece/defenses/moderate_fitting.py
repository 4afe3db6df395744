"""Moderate fitting (Zhu et al., EMNLP 2022, "Moderate-fitting as a natural backdoor defender"): a
model that fits its data only moderately learns the clean task before it learns the backdoor. The
DeCE authors implement it as training with a learning rate 10 times lower, which is what this is."""

from __future__ import annotations

from dataclasses import dataclass

from dece.defenses.base import TrainingDefense, registered


@registered
@dataclass
class ModerateFitting(TrainingDefense):
    """Train the arm with its learning rate multiplied by ``lr_scale`` (on top of the arm's own
    ``lr_scale``), everything else unchanged. The shorthand arm ``"poisoned-moderate_fitting"`` is CE
    with this defense.

    Parameters:
        lr_scale: the learning-rate factor; 0.1 as the DeCE authors use it. In (0, 1].
    """

    name = "moderate_fitting"
    summary = "train with a 10x lower learning rate (lr_scale=0.1), as the DeCE authors implement it"

    lr_scale: float = 0.1

    def check(self) -> None:
        if not 0 < self.lr_scale <= 1:
            raise self.fail("lr_scale", "must lie in (0, 1]")

    @property
    def lr_factor(self) -> float:
        return self.lr_scale
