"""One plan per run: every arm resolved once, in the order the runner trains them.

``plan_experiment(cfg)`` builds each arm's loss and defense once, says how the arm gets its model
(trained, or the model of a plain CE arm of the run for an input defense), which arms it reads, its
fingerprints and its folder, and puts the arms in dependency order: stage 0 trains first (several
at once with ``jobs > 1``; with them a data defense that reads only the rows, ``dedup``), stage 1 (the
other data defenses, and input defenses that reuse a CE arm's model) after it. ``dece run --dry-run``
prints the plan; the runner walks it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from dece.defenses import DataDefense, Defense, InputDefense, get_defense
from dece.experiments.store import arm_fingerprint, training_fingerprint
from dece.experiments.config import ArmConfig, ExperimentConfig
from dece.experiments.defended import has_reference_arm, is_plain_ce, reuses_plain_ce_model
from dece.losses import get_loss
from dece.losses.base import TokenLoss


@dataclass(frozen=True)
class ArmPlan:
    """One arm, resolved. ``stage`` 0 runs first, 1 after it; ``reads`` names the arms whose model or
    per-row losses this arm uses; ``trains`` is False for an arm that generates with another arm's
    model; ``parallel`` is False for a stage-1 arm that must train a shared
    reference model itself (such arms then run one at a time)."""

    arm: ArmConfig
    loss: TokenLoss
    defense: Defense | None
    stage: int
    how: str
    reads: tuple[str, ...]
    trains: bool
    parallel: bool
    fingerprint: str
    train_fingerprint: str
    folder: Path

    @property
    def name(self) -> str:
        return self.arm.name


def _plain_ce_arms(cfg: ExperimentConfig, data: str) -> list[str]:
    return [a.name for a in cfg.arms if is_plain_ce(a, data)]


def _named(defense: DataDefense) -> str:
    """``dece_filter: score=onset, ngram=3``: the defense's name and the parameters set away from their defaults
    (the source arm is named beside it already)."""
    set_ = [f"{f.name}={getattr(defense, f.name)}" for f in dataclasses.fields(defense)
            if f.init and f.name != "source" and f.default is not dataclasses.MISSING and getattr(defense, f.name) != f.default]
    return defense.name + (f": {', '.join(set_)}" if set_ else "")


def plan_arm(cfg: ExperimentConfig, arm: ArmConfig) -> ArmPlan:
    """The plan of one arm of ``cfg`` (see the module docstring)."""
    defense = None if arm.defense is None else get_defense(arm.defense, **arm.defense_params)
    reads: tuple[str, ...] = ()
    stage, how = 0, f"train with {arm.loss}"
    if isinstance(defense, DataDefense) and defense.reads == "rows":  # no model, no other arm
        how = f"remove rows ({defense.name}), then train with {arm.loss}"
    elif isinstance(defense, DataDefense):
        stage = 1
        source = cfg.source_arm(arm)
        if source is not None:
            what = "per-row losses" if getattr(defense, "needs_dynamics", True) else "saved model"
            reads, how = (source.name,), f"remove rows by {source.name}'s {what} ({_named(defense)}), then train"
        else:
            ce = _plain_ce_arms(cfg, arm.data)
            reads = tuple(ce[:1])
            model = f"{ce[0]}'s model" if ce else "a reference CE model (trained once, shared)"
            how = f"remove rows chosen on {model} ({defense.name}), then train with {arm.loss}"
    elif isinstance(defense, InputDefense) and reuses_plain_ce_model(cfg, arm):
        stage, reads = 1, tuple(_plain_ce_arms(cfg, arm.data)[:1])
        how = f"generate with {reads[0]}'s model behind {defense.name}"
    elif defense is not None:
        how += f" and {defense.name}"
    return ArmPlan(
        arm=arm, loss=get_loss(arm.loss, **arm.loss_params), defense=defense, stage=stage, how=how, reads=reads,
        trains=not how.startswith("generate"), parallel=stage == 0 or has_reference_arm(cfg, arm), fingerprint=arm_fingerprint(cfg, arm),
        train_fingerprint=training_fingerprint(cfg, arm), folder=Path(cfg.output_dir) / "arms" / arm.name,
    )


def plan_experiment(cfg: ExperimentConfig) -> list[ArmPlan]:
    """Every arm of ``cfg`` resolved once, stage 0 first, config order within a stage."""
    plans = [plan_arm(cfg, arm) for arm in cfg.arms]
    return sorted(plans, key=lambda p: p.stage)  # stable: config order within a stage


def optimizer_steps(cfg: ExperimentConfig, rows: int) -> int:
    """Optimizer steps of one arm trained on ``rows`` rows (one process)."""
    t = cfg.train
    return math.ceil(rows / (t.batch_size * t.grad_accum)) * t.epochs
