"""The run directory: every file is written atomically (temp file + rename), so a run killed at any
point leaves either the old file or the new one, never half of one.

    RUN_DIR/.lock, .lock.owner          held by the one process writing the folder (and its pid)
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
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

from filelock import FileLock, Timeout

from dece.data.io.common import atomic_write
from dece.errors import ConfigError


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
    return json.loads(path.read_text(encoding="utf-8"))


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
