"""`dece run CONFIG.toml [--set key.path=value ...] [--dry-run]`: run an experiment (resumable); a
config with a [sweep] table runs its grid, as `dece sweep`. --dry-run validates everything, reads the
data and prints the plan (each arm's stage, how it gets its model, what it reads, whether it is done,
the data sizes and optimizer steps) without training or writing anything; on a sweep it lists the cells
and reads the data of each distinct dataset / attack / seed setting."""

from __future__ import annotations

import argparse
from pathlib import Path

from dece.cli.common import add_config_arguments, overrides
from dece.cli.sweep import run as run_sweep_command
from dece.data.records import Example
from dece.defenses.base import DataContext, DataDefense
from dece.experiments import load_config, run_experiment
from dece.errors import ConfigError, DataError
from dece.experiments.config import ExperimentConfig, read_config_data
from dece.experiments.data_prep import PreparedData, prepare_data
from dece.experiments.defended import arm_finished, finished_plain_ce_arm
from dece.experiments.plan import ArmPlan, optimizer_steps, plan_experiment
from dece.experiments.store import arm_state, check_checkpoints, saved_training
from dece.experiments.runner import check_backends, check_launch
from dece.experiments.sweep import expand_grid, has_sweep
from dece.training.distributed import is_main, launched, world_size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment from a TOML config", description=__doc__)
    p.add_argument("config", help="path of the experiment's TOML config")
    add_config_arguments(p)
    p.add_argument("--dry-run", action="store_true", help="validate, read the data, print the plan; run nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if has_sweep(args.config, overrides(args)):  # a [sweep] table: run the grid (dece sweep); a dry run lists its cells
        args.list = args.dry_run
        status = run_sweep_command(args)
        if args.dry_run:
            print(describe_sweep_data(read_config_data(args.config, overrides(args))))
        return status
    cfg = load_config(args.config, overrides(args))
    if args.dry_run:
        check_launch(cfg)  # under torchrun / accelerate launch: what the run would refuse
        check_backends(cfg)
        plan = describe_plan(cfg)
        if is_main():
            print(plan)
        return 0
    run_experiment(cfg)
    return 0


def describe_plan(cfg: ExperimentConfig) -> str:
    """The plan of ``cfg`` as text: data sizes, then one line per arm in run order. Reads only."""
    data = prepare_data(cfg)  # no run folder: nothing is written
    run_dir = Path(cfg.output_dir)
    lines = [f"{cfg.name}: {_data_sizes(cfg, data)}",
             f"output: {run_dir}; "
             + (f"{world_size()} launched processes; " if launched() else f"{cfg.jobs} process(es); ") + "base: "
             + (cfg.model.name if cfg.model.is_pretrained else f"{cfg.model.name} "
                + (f"pretrained on {cfg.pretrain.rows} rows of the {cfg.pretrain.corpus} corpus (cached after its first "
                   "run)" if cfg.pretrain else "from scratch"))]
    lines += _model_lines(cfg)
    for plan in plan_experiment(cfg):
        status = _status(cfg, plan, run_dir)
        how, reads, trains = plan.how, f"; reads {', '.join(plan.reads)}" if plan.reads else "", plan.trains
        gone = _deleted_ce_model(cfg, plan, run_dir)
        if gone is not None and status != "done":  # the runner cannot borrow it: it trains a CE model instead
            trains = True
            name = plan.defense.name
            how = (f"remove rows chosen on the run's reference CE model (reference/: trained once if missing, "
                   f"shared) ({name}), then train with {plan.arm.loss}"
                   if isinstance(plan.defense, DataDefense) else f"train its own CE model, generate behind {name},")
            reads = (f"; {gone}'s model was deleted (to retrain {gone} once and share it: "
                     f"delete arms/{gone}/metrics.json)")
        steps = _training_steps(cfg, plan, data.train_rows(plan.arm.data)) if trains and status != RESCORE else ""
        lines.append(f"  [{plan.stage}] {plan.name}: {how}{steps}{reads} ({status}; fingerprint {plan.fingerprint})")
    return "\n".join(lines)


def _deleted_ce_model(cfg: ExperimentConfig, plan: ArmPlan, run_dir: Path) -> str | None:
    """The plain CE arm whose model ``plan`` borrows (an input defense's model, a data defense's reference), when
    that arm is done, so it will not train again, but its saved model was deleted; else None."""
    if not plan.reads or cfg.source_arm(plan.arm) is not None:  # a row-loss source keeps its results, not a model
        return None
    other = next(a for a in cfg.arms if a.name == plan.reads[0])
    # the runner borrows finished_plain_ce_arm's model; a CE arm not done yet trains (and saves) it first
    gone = arm_finished(cfg, other, run_dir) and finished_plain_ce_arm(cfg, plan.arm.data, run_dir) is None
    return other.name if gone else None


RESCORE = "scored again with its saved model"


def _status(cfg: ExperimentConfig, plan: ArmPlan, run_dir: Path) -> str:
    """Whether the arm is done, only evaluated again (its model is saved, or borrowed from another arm, and at
    most ``[eval]`` or the detector changed), trained again (results, but no saved model), resumes from what
    its folder holds, or runs from nothing."""
    if arm_state(cfg, plan.arm, run_dir) is not None:
        return "done"
    scored = (plan.folder / "metrics.json").exists()  # arm_state raised on metrics of another training config
    if saved_training(plan.folder, plan.train_fingerprint) is not None or (scored and not plan.trains):
        return RESCORE
    if scored:
        return "trained again: no saved model to score"
    resume = check_checkpoints(plan.folder / "checkpoints", plan.train_fingerprint)  # arm_state checked them
    return f"resumes from {Path(resume).name}" if resume else "to run"


def _training_steps(cfg: ExperimentConfig, plan: ArmPlan, rows: list[Example]) -> str:
    """`` on poisoned rows, N optimizer steps``; a data defense that reads only the rows (``dedup``) is applied
    here (it costs seconds) so N counts the rows it keeps; one that needs a model only removes rows once it
    has run, so N is an upper bound."""
    defense = plan.defense
    if isinstance(defense, DataDefense) and defense.reads == "rows":
        removed = len(defense.select(rows, DataContext()).ids)
        return (f" on {plan.arm.data} rows less the {removed} {defense.name} removes, "
                f"{optimizer_steps(cfg, len(rows) - removed)} optimizer steps")
    if isinstance(defense, DataDefense):
        return (f" on {plan.arm.data} rows, at most {optimizer_steps(cfg, len(rows))} optimizer steps "
                f"(fewer once {defense.name} has removed rows)")
    return f" on {plan.arm.data} rows, {optimizer_steps(cfg, len(rows))} optimizer steps"


def _data_sizes(cfg: ExperimentConfig, data: PreparedData) -> str:
    return (f"{len(data.clean_train)} training rows"
            + (f" ({data.poison_report['n_poisoned']} poisoned by {cfg.attack.name}"
               + _short_of_request(data.poison_report)
               + (f", each {cfg.attack.duplicates} times"
                  + (" as near-duplicates" if cfg.attack.near_duplicates else "")
                  + f": {len(data.poisoned_train)} rows with the copies"
                  if cfg.attack.duplicates > 1 and data.poisoned_train is not None else "") + ")"
               if data.poison_report else "")
            + f", {len(data.valid)} valid, {len(data.clean_test)} clean test"
            + (f" + {len(data.triggered_test)} triggered" if data.triggered_test else "") + " rows")


def describe_sweep_data(data: dict) -> str:
    """The data of a sweep's cells, read (and poisoned) once per distinct dataset, attack and seed, so a bad
    path, option or attack setting of any cell is found before the sweep starts. Reads only.

    Raises:
        ConfigError: a cell's data cannot be read or poisoned (the message names the cell).
    """
    seen: set[str] = set()
    lines = []
    cells = expand_grid(data)
    for cell in cells:
        key = cell.config.fingerprint("dataset", "attack", "seed")
        if key in seen:
            continue
        seen.add(key)
        try:
            prepared = prepare_data(cell.config)
        except (ConfigError, DataError) as err:
            raise type(err)(f"sweep cell {cell.name}: {err}") from None
        lines.append(f"data of {cell.name}: {_data_sizes(cell.config, prepared)}")
    return "\n".join([f"the data of {len(seen)} distinct dataset / attack / seed settings, read:"] + lines
                      + _model_lines(cells[0].config))


def _short_of_request(report: dict) -> str:
    """`` of N requested: only M rows are eligible`` when the attack could not poison as many as asked."""
    requested = report.get("n_requested", report["n_poisoned"])
    if report["n_poisoned"] >= requested:
        return ""
    return f" of {requested} requested: only {report['n_eligible']} rows can carry the payload"


def _model_lines(cfg: ExperimentConfig) -> list[str]:
    """For an ``hf:`` model: whether this machine can load it (a run would stop there if not) and the per-GPU
    memory estimate from its configuration (:mod:`dece.models.memory`); nothing for a tiny model."""
    if not cfg.model.is_pretrained:
        return []
    from dece.experiments.config import check_model_source
    from dece.models.memory import estimate_memory

    lines = []
    try:
        check_model_source(cfg.model)
    except ConfigError as err:
        lines.append(f"model: a run here would stop: {err}")
    try:
        estimate = estimate_memory(cfg.model, cfg.train.batch_size, cfg.model.arch_config)
    except ConfigError as err:
        return lines + [f"memory estimate: unavailable: {err}"]
    return lines + [f"memory (estimate for one GPU taking the whole batch of {cfg.train.batch_size}; under a launch of N "
                    f"processes each takes {cfg.train.batch_size}/N): {line}" for line in estimate.lines()]
