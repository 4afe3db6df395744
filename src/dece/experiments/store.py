"""The run directory: every file is written atomically (temp file + rename), so a run killed at any
point leaves either the old file or the new one, never half of one.

    RUN_DIR/.lock, .lock.owner          held by the one process writing the folder (and its pid); kept after
                                        the run: deleting an opened lock file would let two writers in
    RUN_DIR/config.toml                 resolved experiment config
    RUN_DIR/data/                       poisoned train set, triggered test set, poisoning report
    RUN_DIR/arms/ARM/config.toml        the arm's resolved config
    RUN_DIR/arms/ARM/metrics.json       written last: its presence marks the arm as done
    RUN_DIR/arms/ARM/predictions.jsonl  one row per test input with its meta and the payload verdict
    RUN_DIR/arms/ARM/dynamics.jsonl     per-epoch measurements, appended as training goes
    RUN_DIR/arms/ARM/val_loss.jsonl     per-epoch clean-validation loss (DeCE-auto's signal)
    RUN_DIR/arms/ARM/train_rows.jsonl   with per-row losses: the training rows (index, id, poisoned)
    RUN_DIR/audit/, RUN_DIR/report/     `dece audit` and `dece report` outputs
    RUN_DIR/results.md, results.json    the table over all arms

A sweep (dece.experiments.sweep) keeps one such folder per cell under SWEEP_DIR/cells/<cell>/, with
SWEEP_DIR/sweep.toml, sweep.json (cells and status), sweep.jsonl (events) and results.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from filelock import FileLock, Timeout

from dece.attacks import ATTACKS
from dece.data.io.common import atomic_write
from dece.errors import ConfigError, DataError
from dece.experiments.config import ArmConfig, EvalConfig, ExperimentConfig, PretrainConfig


def write_text_atomic(path: Path, text: str) -> None:
    """``text`` written to ``path`` atomically (:func:`dece.data.io.common.atomic_write`)."""
    with atomic_write(path) as handle:
        handle.write(text)


class RunLockedError(ConfigError):
    """Another process holds the run folder's lock; the message names its pid."""


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``run_dir`` (``RUN_DIR/.lock``, via ``filelock``) for the block, so two
    ``dece run`` on one folder cannot both train and interleave its files. The lock dies with its
    process (a killed run leaves nothing to clean up).

    Raises:
        RunLockedError: another process holds it (the message names that process's pid).
        OSError: the folder cannot be created or written (e.g. read-only).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run_dir / ".lock"), timeout=0)
    owner = run_dir / ".lock.owner"
    try:
        lock.acquire()
    except Timeout:
        pid = owner.read_text(encoding="utf-8").strip() if owner.exists() else "unknown"
        raise RunLockedError(f"{run_dir} is in use by another dece process (pid {pid}); wait for it to end, "
                             "or stop it, then run again (it resumes)") from None
    try:
        owner.write_text(str(os.getpid()), encoding="utf-8")
        yield
    finally:
        lock.release()


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def write_jsonl_atomic(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def append_jsonl(path: Path, row: dict[str, Any]) -> None:
    """Appends one line and syncs it (a killed run keeps every line written before). A torn last
    line (a kill mid-append) is cut off first, so it cannot swallow the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _drop_torn_tail(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def keep_records(path: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrites the JSONL file ``path`` (atomically) with only the records ``keep`` accepts: a run resumed
    from a checkpoint drops the lines that a killed attempt wrote after it, since those steps run again and
    would otherwise be logged twice. A missing file stays missing."""
    if path.exists():
        write_jsonl_atomic(path, [r for r in read_records(path) if keep(r)])


def _drop_torn_tail(path: Path) -> None:
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            data = f.seek(0) or f.read()
            f.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


def read_json(path: Path) -> Any:
    """The JSON value in ``path``.

    Raises:
        DataError: the file is not valid UTF-8 JSON (hand-edited or damaged), naming it.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not readable JSON ({err}); restore it, or delete it and a run redoes what it "
                        "recorded") from None


def read_records(path: Path) -> list[dict[str, Any]]:
    """Reads complete lines; a torn last line (a kill mid-append) is dropped."""
    rows = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


# ---------------------------------------------------------------------------------------------------------
# what the folder holds of an arm: fingerprints, saved models, checkpoints


#: in ``arm_dir/model``: the training fingerprint and time of a complete saved model
TRAINED_MARK = "trained.json"
#: in ``arm_dir/checkpoints``: the training fingerprint the checkpoints belong to, and the training
#: time up to the last one
CHECKPOINT_MARK = "fingerprint.json"


def last_checkpoint(out_dir: Path) -> str | None:
    """The newest complete ``checkpoint-*`` folder under ``out_dir`` to resume from, if any. A folder
    without ``trainer_state.json`` (which the Trainer writes last) was torn by a kill: it is removed,
    so the previous complete checkpoint (kept by ``save_total_limit=1`` until the next is saved) is used."""
    found = []
    for folder in out_dir.glob("checkpoint-*"):
        if (folder / "trainer_state.json").exists():
            found.append(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    found.sort(key=lambda p: int(p.name.split("-")[-1]))
    return str(found[-1]) if found else None


def saved_training(arm_dir: Path, fingerprint: str) -> dict[str, Any] | None:
    """``{"fingerprint", "train_seconds"}`` of the complete model saved in ``arm_dir/model`` under
    ``fingerprint``; None when there is none (or it belongs to another training config)."""
    mark = arm_dir / "model" / TRAINED_MARK
    if not mark.exists():
        return None
    saved = read_json(mark)
    return saved if saved.get("fingerprint") == fingerprint else None


def check_checkpoints(folder: Path, fingerprint: str) -> str | None:
    """The last complete checkpoint in ``folder`` to resume from, if any.

    Incomplete checkpoints (a kill while one was written) are removed first, so the previous complete
    one is used (:func:`last_checkpoint`).

    Raises:
        ConfigError: the checkpoints were written under another training fingerprint (a changed config
            in the same folder), or carry none (written by an older version of dece).
    """
    if not folder.is_dir():
        return None
    resume = last_checkpoint(folder)
    if resume is None:
        return None
    mark = folder / CHECKPOINT_MARK
    written = read_json(mark).get("fingerprint") if mark.exists() else None
    if written != fingerprint:
        raise ConfigError(
            f"{folder} holds checkpoints of a different training config (fingerprint {written} != {fingerprint}): "
            "resuming would mix the old run's data and schedule into this one; choose another output_dir "
            f"or delete {folder}"
        )
    return resume


def arm_fingerprint(cfg: ExperimentConfig, arm: ArmConfig) -> str:
    """What an arm's result depends on: its :func:`training_fingerprint`'s settings with ``[eval]``, and the
    version of the attack's detector (:attr:`dece.attacks.base.Attack.detector_version`: ASR and FTR are
    counted with it; version 1 adds nothing, so older run folders keep their fingerprints)."""
    settings = _settings_fingerprint(cfg, arm)
    version = 1 if cfg.attack is None else ATTACKS.get(cfg.attack.name).detector_version
    return settings if version == 1 else hashlib.sha256(f"{settings} detector {version}".encode()).hexdigest()[:16]


def training_fingerprint(cfg: ExperimentConfig, arm: ArmConfig) -> str:
    """What an arm's trained weights depend on: the arm's settings without ``[eval]`` (generation lengths,
    batch size, beams, metrics) and without the detector, so changing only those re-scores the saved model."""
    return _settings_fingerprint(dataclasses.replace(cfg, eval=EvalConfig()), arm)


def _settings_fingerprint(cfg: ExperimentConfig, arm: ArmConfig) -> str:
    """The config an arm runs under: everything but the experiment's name, the other arms (except one
    whose per-row losses its defense reads), the output folder and how many processes and threads ran it
    (so the same arm in two experiments has the same fingerprint, and its folder can be copied between
    them), where its logs go (``train.report_to``), where the pretrained base is cached
    (``pretrain.cache_dir``) and ``model.arch_config`` (read by dry runs only). Values left at their defaults are not hashed, so
    new config fields keep old run folders resumable."""
    neutral = ExperimentConfig()
    source = cfg.source_arm(arm)  # an arm whose training dynamics this arm's defense reads is part of it
    arms = (arm,) if source is None else (arm, source)
    pretrain = cfg.pretrain if cfg.pretrain is None else dataclasses.replace(
        cfg.pretrain, cache_dir=PretrainConfig().cache_dir)  # the base's own key says what it is, not where
    return dataclasses.replace(cfg, name=neutral.name, arms=arms, output_dir=neutral.output_dir, jobs=neutral.jobs,
                               pretrain=pretrain,
                               model=dataclasses.replace(cfg.model, arch_config=None),
                               train=dataclasses.replace(cfg.train, threads=neutral.train.threads,
                                                         report_to=neutral.train.report_to)).fingerprint()


def arm_state(cfg: ExperimentConfig, arm: ArmConfig, run_dir: Path) -> dict[str, Any] | None:
    """What ``run_dir`` holds of ``arm``: its metrics when it is done under this config, None when it is
    still to run (from nothing, from a checkpoint, or a re-score of its saved model after a change of
    ``[eval]`` settings only; results whose model was deleted are trained again). The one place that answers "missing / done / conflict"; it writes nothing
    but discards a checkpoint torn by a kill (:func:`last_checkpoint`).

    Raises:
        ConfigError: the folder holds this arm's results, model or checkpoints of another config.
    """
    arm_dir = run_dir / "arms" / arm.name
    full, training = arm_fingerprint(cfg, arm), training_fingerprint(cfg, arm)
    path = arm_dir / "metrics.json"
    if path.exists():
        metrics = read_json(path)
        if not isinstance(metrics, dict):
            raise DataError(f"{path}: holds no results object; restore it, or delete it and a run redoes the arm")
        if metrics.get("fingerprint") == full:
            return metrics
        if metrics.get("train_fingerprint") != training:
            raise ConfigError(
                f"{arm_dir} holds results of a different config (fingerprint {metrics.get('fingerprint')} != "
                f"{full}); choose another output_dir or delete the arm's folder"
            )
        # only [eval] or the detector changed: the saved (or borrowed) model is scored again; one whose saved
        # model was deleted is trained again under the same config (from its checkpoints, if any)
        return None
    mark = arm_dir / "model" / TRAINED_MARK
    if mark.exists() and saved_training(arm_dir, training) is None:
        raise ConfigError(f"{arm_dir / 'model'} was trained under a different config; choose another output_dir "
                          "or delete the arm's folder")
    check_checkpoints(arm_dir / "checkpoints", training)
    return None
