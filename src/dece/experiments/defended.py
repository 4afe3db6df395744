"""Arms with a defense (``defense = "..."`` in an arm, see :mod:`dece.defenses`).

* **Data defense**: a *reference model* is fine-tuned with CE on the arm's training rows (as the
  DeCE paper computes the representations: with a model trained on the poisoned data). A plain CE arm
  of the same run on the same data (``loss = "ce"``, no params, ``lr_scale = 1``, no defense) is
  reused when it is done; otherwise the reference is trained once under ``RUN_DIR/reference/`` and
  shared by every data defense of the run. The defense chooses rows from the reference model's
  representations; ``arms/ARM/defense_report.json`` records its detection quality, parameters,
  details and the removed ids, ``arms/ARM/removed.jsonl`` the removed rows, and the arm is trained on
  the rows kept. A resumed arm reuses its ``defense_report.json`` when its training fingerprint matches
  (a change of ``[eval]`` alone re-selects nothing, and reuses the reference model).
  ``dece_filter`` needs no reference model: it reads the run's DeCE arm (the per-row losses it recorded,
  :func:`source_row_losses`, or its saved model's token losses, :func:`source_token_losses`); that arm
  runs first, and its config is part of the filtered arm's fingerprint.
* **Input defense**: fitted on the clean training sources, applied to the clean and triggered test
  sources before generation; the report counts the rewritten inputs and the triggers left intact.
  An arm that would train exactly as a plain CE arm of the run generates with that arm's model
  (the report's ``model`` names it) rather than training a copy.
* **Training defense** (``moderate_fitting``): applied by :func:`dece.experiments.arm.train_arm`.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from dece.data.records import Example
from dece.defenses import DataContext, DataDefense, Defense, InputDefense, detection_report, encode_texts, get_defense
from dece.errors import ConfigError, DeceError
from dece.experiments.arm import load_trained, train_arm
from dece.experiments.config import ArmConfig, ExperimentConfig
from dece.experiments.data_prep import PreparedData
from dece.experiments.dynamics import load_dynamics
from dece.experiments.token_losses import model_token_losses
from dece.experiments.store import (
    arm_state,
    read_json,
    read_records,
    training_fingerprint,
    write_json_atomic,
    write_jsonl_atomic,
)
from dece.losses import LOSSES
from dece.models import ModelSpec


def defense_of(arm: ArmConfig) -> Defense | None:
    return None if arm.defense is None else get_defense(arm.defense, **arm.defense_params)


def has_data_defense(arm: ArmConfig) -> bool:
    return isinstance(defense_of(arm), DataDefense)


def is_plain_ce(arm: ArmConfig, data: str) -> bool:
    """An arm trained with plain CE (no parameters, no lr scale, no defense) on ``data`` rows."""
    return (arm.data == data and LOSSES.get(arm.loss).plain_ce and not arm.loss_params and arm.lr_scale == 1.0
            and arm.defense is None)


def has_reference_arm(cfg: ExperimentConfig, arm: ArmConfig) -> bool:
    """Whether an arm of ``cfg`` serves as ``arm``'s reference: a plain CE arm on ``arm``'s data, or the
    DeCE arm whose per-row losses its defense reads (validated to exist)."""
    return cfg.source_arm(arm) is not None or any(is_plain_ce(other, arm.data) for other in cfg.arms)


def reuses_plain_ce_model(cfg: ExperimentConfig, arm: ArmConfig) -> bool:
    """An input-defense arm that trains exactly as a plain CE arm of ``cfg`` does (loss CE, no loss
    parameters, no learning-rate scale) generates with that arm's model instead of training a copy."""
    return (isinstance(defense_of(arm), InputDefense) and is_plain_ce(dataclasses.replace(arm, defense=None), arm.data)
            and has_reference_arm(cfg, arm))


def arm_finished(cfg: ExperimentConfig, arm: ArmConfig, run_dir: Path) -> bool:
    """Whether ``arm`` of ``cfg`` has saved its results in ``run_dir`` (:func:`arm_state`)."""
    return arm_state(cfg, arm, run_dir) is not None


def finished_plain_ce_arm(cfg: ExperimentConfig, data: str, run_dir: Path) -> ArmConfig | None:
    """A plain CE arm of ``cfg`` on ``data`` rows whose results and model are saved, if any."""
    for other in cfg.arms:
        if is_plain_ce(other, data) and (run_dir / "arms" / other.name / "model").is_dir() \
                and arm_finished(cfg, other, run_dir):
            return other
    return None


def reference_model(cfg: ExperimentConfig, arm: ArmConfig, data: PreparedData, base: ModelSpec, run_dir: Path,
                    log: Callable[[str], None] = print):
    """``(model, tokenizer, is_encoder_decoder, where)``: the CE model on ``arm.data`` rows (module docstring)."""
    other = finished_plain_ce_arm(cfg, arm.data, run_dir)
    if other is not None:
        log(f"[{arm.name}] reference model: arm {other.name}")
        return (*load_trained(base, run_dir / "arms" / other.name / "model"), f"arms/{other.name}")
    ref = ArmConfig(name=f"reference-{arm.data}-ce", data=arm.data, loss="ce")
    ref_dir = run_dir / "reference" / f"{arm.data}-ce"
    fingerprint = training_fingerprint(cfg, ref)  # [eval] settings change no reference model
    marker = ref_dir / "reference.json"
    if marker.exists():
        if read_json(marker).get("fingerprint") != fingerprint:
            raise ConfigError(f"{ref_dir} holds a reference model of a different config; choose another output_dir "
                              "or delete that folder")
        log(f"[{arm.name}] reference model: {ref_dir}")
        return (*load_trained(base, ref_dir / "model"), f"reference/{ref_dir.name}")
    rows = data.train_rows(arm.data)
    log(f"[{arm.name}] training the reference model ({arm.data} rows, CE) into {ref_dir}")
    model, tokenizer, is_enc_dec, seconds = train_arm(cfg, ref, base, rows, ref_dir, None, log=log)
    write_json_atomic(marker, {"fingerprint": fingerprint, "train_seconds": round(seconds, 1), "rows": len(rows)})
    return model, tokenizer, is_enc_dec, f"reference/{ref_dir.name}"


def apply_data_defense(cfg: ExperimentConfig, arm: ArmConfig, data: PreparedData, base: ModelSpec, run_dir: Path,
                       arm_dir: Path, log: Callable[[str], None] = print) -> tuple[list[Example], dict[str, Any]]:
    """The arm's training rows minus those its data defense removes, and the report for ``metrics.json``."""
    defense = defense_of(arm)
    assert isinstance(defense, DataDefense)
    rows = data.train_rows(arm.data)
    fingerprint = training_fingerprint(cfg, arm)  # nor which rows the defense removes
    path = arm_dir / "defense_report.json"
    saved = read_json(path) if path.exists() else None
    if saved is not None and saved.get("fingerprint") == fingerprint:
        log(f"[{arm.name}] {arm.defense}: reusing {path}")
        full = saved
    else:
        rate = cfg.attack.rate if cfg.attack else None
        if defense.reads == "rows":
            context, where = DataContext(poison_rate=rate), None
        elif defense.reads == "row_losses":
            source = cfg.source_arm(arm)
            context = DataContext(row_losses=source_row_losses(cfg, source, run_dir),
                                  token_losses=source_token_losses(cfg, source, base, run_dir), poison_rate=rate)
            where = f"arms/{source.name}"
            log(f"[{arm.name}] {arm.defense}: reading arm {source.name}")
        else:
            model, tokenizer, is_enc_dec, where = reference_model(cfg, arm, data, base, run_dir, log)

            def encode(texts: Sequence[str]):
                return encode_texts(model, tokenizer, texts, is_encoder_decoder=is_enc_dec,
                                    max_source_length=base.max_source_length, batch_size=cfg.eval.batch_size,
                                    pooling=defense.representation)

            context = DataContext(encode=encode, poison_rate=rate)
        started = time.perf_counter()
        selection = defense.select(rows, context)
        report = {"name": defense.name, "kind": defense.kind, "params": resolved_params(defense, rate, where),
                  "reference": where,
                  **detection_report(selection.ids, rows), "details": selection.details,
                  "seconds": round(time.perf_counter() - started, 1)}
        full = {**report, "fingerprint": fingerprint, "removed_ids": list(selection.ids)}
        removed = set(selection.ids)
        write_jsonl_atomic(arm_dir / "removed.jsonl", [
            {**r.to_dict(), "meta": {**r.meta, "removed_by": defense.name}, "score": selection.scores.get(str(r.meta["id"]))}
            for r in rows if str(r.meta.get("id")) in removed])
        write_json_atomic(path, full)
    removed = set(full["removed_ids"])
    kept = [r for r in rows if str(r.meta.get("id")) not in removed]
    report = {k: v for k, v in full.items() if k not in ("fingerprint", "removed_ids")}
    p, r = report["precision"], report["recall"]
    log(f"[{arm.name}] {arm.defense} removed {report['removed']} of {report['n_rows']} rows "
        f"({report['poisoned_removed']} poisoned, {report['clean_removed']} clean; "
        f"precision {_pct(p)}, recall {_pct(r)})")
    if not kept:
        raise DeceError(f"arm {arm.name!r}: defense {arm.defense!r} removed every training row")
    return kept, report


def resolved_params(defense: DataDefense, poison_rate: float | None, reference: str | None) -> dict[str, Any]:
    """The defense's parameters as used: an unset ``rate`` is the experiment's attack rate and an unset
    ``source`` the arm read (``reference`` = ``arms/NAME``), as :func:`removal_budget` and
    :meth:`ExperimentConfig.source_arm` resolve them."""
    params = dict(defense.params)
    if "rate" in params and params["rate"] is None:
        params["rate"] = poison_rate
    if "source" in params and params["source"] is None and reference is not None:
        params["source"] = reference.removeprefix("arms/")
    return params


def source_row_losses(cfg: ExperimentConfig, source: ArmConfig, run_dir: Path
                      ) -> Callable[[Sequence[Example]], list[list[float]]]:
    """``rows -> losses[epoch][row]``: the largest token CE of each row after each epoch of the finished
    arm ``source`` (its ``dynamics.jsonl`` and ``train_rows.jsonl``), in the order of ``rows``."""
    arm_dir = run_dir / "arms" / source.name

    def row_losses(rows: Sequence[Example]) -> list[list[float]]:
        _check_finished(cfg, source, run_dir)
        epochs = [r["row_max_losses"] for r in load_dynamics(arm_dir / "dynamics.jsonl") if "row_max_losses" in r]
        if not epochs:
            raise DeceError(f"{arm_dir / 'dynamics.jsonl'} has no per-row losses: run with [dynamics] row_losses = true")
        column = {str(r["id"]): r["index"] for r in read_records(arm_dir / "train_rows.jsonl")}
        missing = [r.meta.get("id") for r in rows if str(r.meta.get("id")) not in column]
        if missing:
            raise DeceError(f"arm {source.name!r} did not train on row(s) {missing[:3]}: it must train on the same rows")
        idx = [column[str(r.meta["id"])] for r in rows]
        return [[epoch[i] for i in idx] for epoch in epochs]

    return row_losses


def source_token_losses(cfg: ExperimentConfig, source: ArmConfig, base: ModelSpec, run_dir: Path
                        ) -> Callable[[Sequence[Example]], tuple[list[list[float]], list[list[str]]]]:
    """``rows -> (losses, tokens)``: the finished arm ``source``'s saved model's CE on each target token of
    ``rows`` (:func:`dece.experiments.token_losses.model_token_losses`); the model is loaded when called."""

    def token_losses(rows: Sequence[Example]) -> tuple[list[list[float]], list[list[str]]]:
        _check_finished(cfg, source, run_dir)
        return model_token_losses(base, run_dir / "arms" / source.name / "model", rows,
                                  batch_size=cfg.eval.batch_size)

    return token_losses


def _check_finished(cfg: ExperimentConfig, source: ArmConfig, run_dir: Path) -> None:
    if not arm_finished(cfg, source, run_dir):
        raise DeceError(f"arm {source.name!r} has not finished in {run_dir}: it is read first")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _intact(trigger: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(trigger.strip())}(?!\w)", text) is not None


def prepare_input_defense(arm: ArmConfig, data: PreparedData, log: Callable[[str], None] = print
                          ) -> tuple[Callable[[list[str]], list[str]], dict[str, Any]]:
    """``(defend, report)``: ``defend`` maps test sources to the defense's rewrites (computed here,
    once, for the clean and triggered test sets); ``report`` goes under ``metrics["defense"]``:
    ``changed_clean`` / ``changed_triggered`` count rewritten inputs; ``trigger_checked`` counts the
    triggered inputs whose trigger text occurs verbatim in them, ``trigger_intact`` how many of those
    still contain it after the defense."""
    defense = defense_of(arm)
    assert isinstance(defense, InputDefense)
    started = time.perf_counter()
    defense.fit([r.src for r in data.clean_train])
    clean = [r.src for r in data.clean_test]
    trig_rows = data.triggered_test or []
    trig = [r.src for r in trig_rows]
    out_clean, out_trig = defense.transform(clean), defense.transform(trig)
    lookup = dict(zip(clean + trig, out_clean + out_trig))
    checked = [(r.meta["trigger"], d) for r, d in zip(trig_rows, out_trig)
               if r.meta.get("trigger") and _intact(r.meta["trigger"], r.src)]
    report = {"name": defense.name, "kind": defense.kind, "params": defense.params,
              "n_clean": len(clean), "changed_clean": sum(a != b for a, b in zip(clean, out_clean)),
              "n_triggered": len(trig), "changed_triggered": sum(a != b for a, b in zip(trig, out_trig)),
              "trigger_checked": len(checked), "trigger_intact": sum(_intact(t, d) for t, d in checked),
              "seconds": round(time.perf_counter() - started, 1)}
    if getattr(defense, "fallbacks", 0):
        report["fallbacks"] = defense.fallbacks
    log(f"[{arm.name}] {arm.defense} rewrote {report['changed_clean']}/{len(clean)} clean and "
        f"{report['changed_triggered']}/{len(trig)} triggered test inputs; triggers intact "
        f"{report['trigger_intact']}/{report['trigger_checked']}")
    return (lambda sources: [lookup[s] for s in sources]), report


def training_defense_report(arm: ArmConfig) -> dict[str, Any]:
    defense = defense_of(arm)
    assert defense is not None
    return {"name": defense.name, "kind": defense.kind, "params": defense.params,
            "lr_factor": getattr(defense, "lr_factor", 1.0)}
