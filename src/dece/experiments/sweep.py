"""Sweeps: one config expands a grid of experiments into one results store, resumable at any point.

A ``[sweep]`` table in an experiment config names the keys to vary::

    [sweep]
    grid = { "attack.name" = ["badpre", "ripple"], "attack.rate" = [0.05, 0.1], "seed" = [1, 2] }

Each *cell* of the grid (the cartesian product, in the order the keys are written) is the base config
with those keys overridden (dotted paths, as ``--set``), run with :func:`run_experiment` into
``RUN_DIR/cells/<cell-name>/`` (``RUN_DIR`` is the base ``output_dir``; a cell's name is its
overrides, e.g. ``attack.name=badpre__attack.rate=0.05__seed=1``). The key ``arms`` may be swept
too: each value is one arm (a shorthand string or a table) or a list of arms.

Files: ``RUN_DIR/sweep.toml`` (the resolved base config with its ``[sweep]``), ``RUN_DIR/sweep.json``
(every cell, its overrides and whether it is done; cells of other configs run into the same folder are kept), ``RUN_DIR/sweep.jsonl`` (events, appended:
``started`` / ``done`` per cell, with times). A cell is *done* when every arm's ``metrics.json``
carries the cell's fingerprint and the cell's ``results.json`` exists; done cells are skipped without
loading anything. A sweep killed at any point (``SIGKILL`` included) resumes where it stopped: every
file is written atomically, finished cells are never recomputed, a cell killed mid-way resumes from its
finished arms and last epoch checkpoint. Changing the base config in place is refused (as for a run);
adding values to the grid only adds cells.

Many workers may run one sweep at once, on one machine or on a cluster sharing the folder
(:mod:`dece.experiments.cluster` submits them through ``submitit``): each cell is claimed by its run lock
(``RUN_DIR/cells/<cell>/.lock``), so two workers never run the same cell. With ``wait`` a worker that
finds cells locked by others polls them until they are done, and takes over the cell of a worker that
died (its lock dies with it), resuming from that worker's checkpoints.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import tomli_w
from filelock import FileLock

from dece.errors import ConfigError, DataError
from dece.experiments.config import (
    ExperimentConfig, config_from_dict, flatten_grid, read_config_data, run_folder, set_paths,
)
from dece.experiments.store import (
    RunLockedError, append_jsonl, arm_state, read_json, run_lock, write_json_atomic, write_text_atomic,
)
from dece.training.distributed import launched

SWEEP_KEY = "sweep"
_SAFE = re.compile(r"[^A-Za-z0-9._=+-]+")
MAX_NAME = 120


@dataclass(frozen=True)
class Cell:
    name: str
    overrides: dict[str, Any]  # dotted key -> value
    config: ExperimentConfig

    @property
    def dir(self) -> Path:
        return Path(self.config.output_dir)


def _label(value: Any) -> tuple[str, bool]:
    """A value's short text in a cell name, and whether it shows the value (False where a hash stands for a
    table without ``name``, a list of numbers...)."""
    if isinstance(value, bool):
        return str(value).lower(), True
    if isinstance(value, (int, float, str)):
        return str(value), True
    if isinstance(value, Mapping) and "name" in value:
        return str(value["name"]), True
    if isinstance(value, list) and all(isinstance(v, (str, Mapping)) for v in value):
        parts = [_label(v) for v in value]
        return "+".join(text for text, _ in parts), all(shown for _, shown in parts)
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:8], False


def _full_name(overrides: Mapping[str, Any]) -> str:
    return "__".join(_SAFE.sub("_", f"{k}={_label(v)[0]}") for k, v in overrides.items()) or "base"


def name_hides_values(overrides: Mapping[str, Any]) -> bool:
    """Whether :func:`cell_name` of ``overrides`` is cut or stands a hash for a value (a table without a
    ``name``, a list of numbers...), so that it does not show every value."""
    return len(_full_name(overrides)) > MAX_NAME or not all(_label(v)[1] for v in overrides.values())


def cell_name(overrides: Mapping[str, Any]) -> str:
    """``{"attack.rate": 0.05, "seed": 1}`` -> ``attack.rate=0.05__seed=1`` (file-name safe); a name longer
    than ``MAX_NAME`` is cut and ends with a hash of the overrides (``dece sweep --list`` shows it in full)."""
    name = _full_name(overrides)
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}-{digest}"
    return name


def _arm_set(value: Any) -> list[str]:
    """A grid's arms value as the set of arms it trains: ``"a"`` = ``["a"]``, ``["a", "b"]`` = ``["b", "a"]``."""
    return sorted(json.dumps(arm, sort_keys=True) for arm in (value if isinstance(value, list) else [value]))


def _same_cell(overrides: Mapping[str, Any]) -> str:
    """What makes two cells the same: their overrides in any key order, the arms as a set."""
    return json.dumps({k: _arm_set(v) if k == "arms" else v for k, v in overrides.items()}, sort_keys=True)


def _started_cells(run_dir: Path) -> dict[str, str]:
    """The cells ``run_dir/sweep.json`` records whose folder has started, by :func:`_same_cell`: a grid that
    lists the same arms in another order (or its keys in another order) than the config that started a
    cell reuses that cell's folder instead of training it again. An unreadable ``sweep.json`` is left to
    ``dece report`` / the next write to name; here it only means no cell is reused."""
    try:
        cells = read_json(run_dir / "sweep.json").get("cells", [])
        return {_same_cell(c["overrides"]): c["name"] for c in cells if Path(c["name"]).name == c["name"] != ".."
                and (run_dir / "cells" / c["name"] / "config.toml").exists()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def expand_grid(data: Mapping[str, Any]) -> list[Cell]:
    """The cells of a config mapping with a ``[sweep]`` table (validated, output dirs assigned). A cell that
    differs from one already started in the same folder only in the order of its arms or grid keys gets that
    cell's name (and folder)."""
    data = json.loads(json.dumps(dict(data)))
    sweep = data.pop(SWEEP_KEY, None)
    if not isinstance(sweep, Mapping):
        raise ConfigError("sweep: expected a [sweep] table with grid = { key = [values] } (`sweep = false` drops an "
                          "included one: such a config is one experiment, for `dece run`)")
    unknown = sorted(set(sweep) - {"grid"})
    if unknown:
        raise ConfigError(f"unknown key 'sweep.{unknown[0]}'; valid keys of [sweep]: grid")
    grid = flatten_grid(sweep.get("grid") or {})
    if not grid:
        raise ConfigError("sweep.grid: give at least one key with a list of values")
    for key, values in grid.items():
        if key == "output_dir" or key.startswith("sweep"):
            raise ConfigError(f"sweep.grid.{key}: cannot be swept")
        seen = [json.dumps(_arm_set(v) if key == "arms" else v, sort_keys=True) for v in values]
        repeated = next((v for v, text in zip(values, seen) if seen.count(text) > 1), None)
        if repeated is not None:  # the same cell twice would train the same models twice
            note = " (a grid's arms are a set: their order and a one-arm list do not make another cell)" if key == "arms" else ""
            raise ConfigError(f"sweep.grid.{key}: {json.dumps(repeated)} is listed more than once{note}")
    run_dir = sweep_dir(data)
    started = _started_cells(run_dir)
    cells, names = [], set()
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values))
        cell_data = set_paths(data, [(f"sweep.grid.{key}", key.split("."),
                                      [value] if key == "arms" and not isinstance(value, list) else value)
                                     for key, value in overrides.items()])
        name = started.get(_same_cell(overrides)) or cell_name(overrides)
        if name in names:
            name = f"{name}-{hashlib.sha256(json.dumps(overrides, sort_keys=True).encode()).hexdigest()[:8]}"
        names.add(name)
        cell_data["output_dir"] = str(run_dir / "cells" / name)
        try:
            cfg = config_from_dict(cell_data)
        except ConfigError as err:
            raise ConfigError(f"sweep cell {name}: {err}") from None
        cells.append(Cell(name, overrides, cfg))
    return cells


def sweep_dir(data: Mapping[str, Any]) -> Path:
    """The folder of the sweep of config mapping ``data`` (its ``output_dir``; cells go under ``cells/``)."""
    return Path(run_folder(data))


def has_sweep(path: str | Path, overrides: list[str] = ()) -> bool:
    """Whether the config file at ``path``, with the ``key.path=value`` ``overrides``, has a ``[sweep]`` table."""
    try:
        return SWEEP_KEY in read_config_data(path, overrides)
    except (OSError, ConfigError):
        return False


def cell_done(cell: Cell) -> bool:
    """Every arm finished with this cell's config and the cell's table written (raises, as
    :func:`dece.experiments.store.arm_state` does, if the folder holds another config's results)."""
    _check_folder(cell)
    if not (cell.dir / "results.json").exists():
        return False
    return all(arm_state(cell.config, arm, cell.dir) is not None for arm in cell.config.arms)


def _check_folder(cell: Cell) -> None:
    if cell.dir.exists() and not cell.dir.is_dir():
        raise ConfigError(f"sweep cell {cell.name}: {cell.dir} is a file where the cell's folder belongs; move it away")


def _check_no_conflict(cell: Cell) -> None:
    """Refuses, before anything runs, a cell folder holding another config's arm results, models or checkpoints."""
    _check_folder(cell)
    for arm in cell.config.arms:
        try:
            arm_state(cell.config, arm, cell.dir)
        except ConfigError as err:
            raise ConfigError(f"sweep cell {cell.name}: {err}") from None


def sweep_status(cells: list[Cell]) -> list[dict[str, Any]]:
    return [{"name": c.name, "overrides": c.overrides, "dir": str(c.dir), "done": cell_done(c)} for c in cells]


def _record_cells(run_dir: Path, status: list[dict[str, Any]]) -> None:
    """Writes ``RUN_DIR/sweep.json``: these cells' status, plus the cells other configs recorded in the same
    folder (several configs may fill one store, e.g. a paper grid and its first stages), so that a report
    sees them all. Read-merge-write under a lock: sweep processes on one folder never drop each other's cells."""
    path = run_dir / "sweep.json"
    with FileLock(f"{path}.lock"):
        mine = {s["name"] for s in status}
        kept = [c for c in (read_json(path).get("cells", []) if path.exists() else [])
                if c.get("name") not in mine and Path(c.get("dir", "")).is_dir()]
        write_json_atomic(path, {"cells": kept + status})


def check_sweep(cells: list[Cell]) -> None:
    """What a run of these cells would refuse, checked before any of them starts: a sweep under a
    multi-process launch, and any cell's arm that no machine of this kind can run
    (:func:`dece.experiments.runner.check_backends`).

    Raises:
        ConfigError: naming the cell, or the command to use instead of a launch.
    """
    from dece.experiments.runner import check_backends

    if launched():
        raise ConfigError("a sweep under torchrun / accelerate launch is not supported: launch `dece run` on a "
                          "config of one cell (the same settings without a [sweep] table), or spread the cells "
                          "over machines with `dece sweep --workers N --executor slurm`")
    for cell in cells:
        try:
            check_backends(cell.config)
        except ConfigError as err:
            raise ConfigError(f"sweep cell {cell.name}: {err}") from None


def run_sweep(data: Mapping[str, Any], log: Callable[[str], None] = print,
              on_done: Callable[[Path], Any] | None = None, wait: float | None = None) -> list[dict[str, Any]]:
    """Runs every cell not done yet (see the module docstring); returns :func:`sweep_status`.

    Args:
        data: the config mapping with its ``[sweep]`` table.
        log: where progress lines go.
        on_done: called with the sweep folder at the end (``dece sweep`` writes ``results.md`` with it; this
            layer does not import the reporting one).
        wait: None: skip the cells other processes hold. A number of seconds: poll them that often until
            every cell is done (a worker of many: it takes over the cell of a worker that died).

    Raises:
        ConfigError: a cell's folder holds results of another config (before anything runs), or the sweep
            runs under a multi-process launch (launch ``dece run`` on one cell's config instead).
    """
    from dece.experiments.runner import run_experiment

    cells = expand_grid(data)
    check_sweep(cells)
    run_dir = sweep_dir(data)
    for cell in cells:
        _check_no_conflict(cell)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "sweep.toml", tomli_w.dumps(json.loads(json.dumps(dict(data)))))
    _record_cells(run_dir, sweep_status(cells))
    events = run_dir / "sweep.jsonl"
    todo = list(enumerate(cells, start=1))
    while todo:
        busy = []
        for i, cell in todo:
            tag = f"[cell {i}/{len(cells)} {cell.name}]"
            if cell_done(cell):
                log(f"{tag} done already, skipped")
                continue
            try:
                with run_lock(cell.dir):  # claimed: no other worker can start it now
                    log(f"{tag} running")
                    append_jsonl(events, {"cell": cell.name, "event": "started", "time": time.time(), "pid": os.getpid()})
                    started = time.perf_counter()
                    run_experiment(cell.config, log=lambda line, tag=tag: log(f"{tag} {line}"), locked=True)
            except RunLockedError as err:  # another process of this sweep runs the cell: leave it to it
                log(f"{tag} {'waiting' if wait is not None else 'skipped'}: {err}")
                busy.append((i, cell))
                continue
            except (ConfigError, DataError) as err:  # name the cell; the cells before it are kept
                raise type(err)(f"sweep cell {cell.name}: {err}") from None
            append_jsonl(events, {"cell": cell.name, "event": "done", "time": time.time(),
                                  "seconds": round(time.perf_counter() - started, 1)})
            _record_cells(run_dir, sweep_status(cells))
        todo = busy if wait is not None else []
        if todo:
            time.sleep(wait)
    status = sweep_status(cells)
    _record_cells(run_dir, status)
    if on_done is not None:
        on_done(run_dir)
    log(f"sweep {run_dir}: {sum(s['done'] for s in status)}/{len(status)} cells done")
    return status
