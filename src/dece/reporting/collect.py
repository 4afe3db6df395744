"""Reads a run folder (``dece run``) or a sweep folder (``dece sweep``) into plain records."""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dece.errors import ConfigError, DataError
from dece.experiments.config import ArmConfig
from dece.experiments.dynamics import load_dynamics
from dece.experiments.store import read_json, read_records


@dataclass
class ArmRecord:
    name: str
    loss: str
    data: str
    metrics: dict[str, Any] | None  # None: not finished
    dynamics: list[dict[str, Any]] = field(default_factory=list)
    triggered_at: int | None = None  # DeCE-auto: the epoch whose end fired the trigger
    defense: str | None = None


@dataclass
class RunRecord:
    """One experiment: a plain run, or one cell of a sweep (``params`` = the cell's overrides)."""

    dir: Path
    name: str
    params: dict[str, Any]
    config: dict[str, Any]
    arms: list[ArmRecord]

    @property
    def attack(self) -> str:
        a = self.config.get("attack")
        return a.get("name", "badpre") if isinstance(a, dict) else "none"

    @property
    def label(self) -> str:
        return self.name


def arm_specs(config: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    """``(name, loss, data, defense)`` of each arm, shorthand names parsed as ``dece run`` does."""
    out = []
    for i, a in enumerate(config.get("arms", [])):
        if isinstance(a, str):
            arm = ArmConfig.from_shorthand(a, f"arms[{i}]")
            out.append((arm.name, arm.loss, arm.data, arm.defense))
        else:
            out.append((a["name"], a.get("loss", "ce"), a.get("data", "poisoned"), a.get("defense")))
    return out


def read_run(run_dir: Path, name: str | None = None, params: dict[str, Any] | None = None) -> RunRecord:
    run_dir = Path(run_dir)
    path = run_dir / "config.toml"
    if not path.exists():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml)")
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    arms = []
    for arm, loss, data, defense in arm_specs(config):
        d = run_dir / "arms" / arm
        metrics = read_json(d / "metrics.json") if (d / "metrics.json").exists() else None
        if metrics is not None and not isinstance(metrics, dict):
            raise DataError(f"{d / 'metrics.json'}: holds no results object; restore it, or delete it and a run "
                            "redoes the arm")
        dyn = load_dynamics(d / "dynamics.jsonl")
        trig = [r.get("triggered_at") for r in read_records(d / "val_loss.jsonl") if r.get("triggered_at") is not None]
        arms.append(ArmRecord(arm, loss, data, metrics, dyn, trig[-1] if trig else None, defense))
    return RunRecord(run_dir, name or config.get("name", run_dir.name), params or {}, config, arms)


def is_sweep(run_dir: Path) -> bool:
    return (Path(run_dir) / "sweep.json").exists()


def sweep_cells(run_dir: Path) -> list[dict[str, Any]]:
    """The cell entries of a sweep folder's ``sweep.json`` (each with a ``name`` and its ``overrides``).

    Raises:
        ConfigError: ``sweep.json`` is not JSON, or not ``{"cells": [...]}`` of entries with a text ``name``
            (a folder name under ``cells/``, each once) and an ``overrides`` table (names the file and the entry).
    """
    path = Path(run_dir) / "sweep.json"
    try:
        data = read_json(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not readable JSON ({err}); `dece sweep CONFIG` rewrites it") from None
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        raise ConfigError(f"{path}: expected {{\"cells\": [...]}}, a list of the sweep's cells")
    seen = set()
    for i, cell in enumerate(cells):
        if not (isinstance(cell, dict) and isinstance(cell.get("name"), str) and cell["name"]
                and isinstance(cell.get("overrides", {}), dict)):
            raise ConfigError(f"{path}: cells[{i}] must be a table with a non-empty text 'name' and an "
                              f"'overrides' table, got {json.dumps(cell)[:120]}")
        if "/" in cell["name"] or "\\" in cell["name"] or cell["name"] in (".", ".."):
            raise ConfigError(f"{path}: cells[{i}].name {cell['name']!r} is not a folder name under cells/")
        if cell["name"] in seen:
            raise ConfigError(f"{path}: cells[{i}].name {cell['name']!r} is listed twice")
        seen.add(cell["name"])
    return cells


def collect(run_dir: Path) -> list[RunRecord]:
    """The runs of ``run_dir``: itself, or every cell of a sweep that has started."""
    run_dir = Path(run_dir)
    if is_sweep(run_dir):
        return [read_run(run_dir / "cells" / c["name"], c["name"], c.get("overrides", {}))  # relative: the folder may move
                for c in sweep_cells(run_dir) if (run_dir / "cells" / c["name"] / "config.toml").exists()]
    if not (run_dir / "config.toml").exists():
        raise ConfigError(f"{run_dir} is neither a run folder (config.toml) nor a sweep folder (sweep.json)")
    return [read_run(run_dir)]


def missing_cells(run_dir: Path) -> tuple[list[str], list[str]]:
    """The cells a sweep folder lists (``sweep.json``) without a started folder (no ``config.toml``), as two
    lists of names: those not started, and those ``sweep.json`` marks done whose folder is gone (moved or
    deleted: the report cannot show them, and ``dece sweep`` would run them again). Both empty for a plain
    run folder."""
    run_dir = Path(run_dir)
    if not is_sweep(run_dir):
        return [], []
    missing = [c for c in sweep_cells(run_dir) if not (run_dir / "cells" / c["name"] / "config.toml").exists()]
    return [c["name"] for c in missing if not c.get("done")], [c["name"] for c in missing if c.get("done")]
