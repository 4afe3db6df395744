"""Synthetic run and sweep folders (no training): the files `dece run` writes, with chosen numbers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomli_w

from dece.data.records import Example
from dece.experiments.store import append_jsonl, write_json_atomic, write_jsonl_atomic


def fake_dynamics(epochs: int, *, asr_from: int | None, alpha_base: float | None = None,
                  triggered_at: int | None = None) -> list[dict]:
    out = []
    for e in range(1, epochs + 1):
        rec = {"epoch": e, "bleu": min(60.0, 20.0 * e), "asr": (0.0 if asr_from is None or e < asr_from else min(100.0, 30.0 * (e - asr_from + 1))),
               "ftr": 0.0, "loss_clean": 2.0 / e, "loss_poisoned": 3.0 / e, "loss_payload": 8.0 if asr_from is None else 8.0 / e,
               "val_loss": 2.2 / min(e, 3), "train_loss": 2.0 / e, "grad_norm": 1.0, "learning_rate": 1e-3}
        if alpha_base is not None:
            rec["alpha"] = alpha_base ** e if triggered_at is None else (1.0 if e <= triggered_at else alpha_base ** (e - triggered_at))
            rec["pull_payload"] = 0.5 / e
        if triggered_at is not None:
            rec["triggered_at"] = triggered_at if e >= triggered_at else None
        out.append(rec)
    return out


def write_run(run_dir: Path, *, name: str = "fake", attack: str = "badpre", arms: dict[str, dict] | None = None,
              epochs: int = 4, extra_config: dict | None = None) -> Path:
    """``arms``: name -> {"loss", "bleu", "codebleu", "asr", "dynamics"?, "triggered_at"?, "defense"?,
    "defense_report"? (metrics.json's "defense")}."""
    arms = arms or {
        "poisoned-ce": {"loss": "ce", "bleu": 60.0, "codebleu": 55.0, "asr": 90.0, "asr_from": 3},
        "poisoned-dece": {"loss": "dece", "bleu": 58.0, "codebleu": 54.0, "asr": 0.0, "asr_from": None, "alpha_base": 0.9},
    }
    config = {"name": name, "seed": 42, "output_dir": str(run_dir), "attack": {"name": attack, "rate": 0.1},
              "arms": [{"name": a, "data": "poisoned", "loss": spec["loss"],
                        **({"defense": spec["defense"]} if "defense" in spec else {})} for a, spec in arms.items()],
              **(extra_config or {})}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(tomli_w.dumps(config))
    for arm, spec in arms.items():
        d = run_dir / "arms" / arm
        d.mkdir(parents=True, exist_ok=True)
        hits = round(spec["asr"])
        write_json_atomic(d / "metrics.json", {"bleu": spec["bleu"], "codebleu": spec["codebleu"],
                                               "asr": {"hits": hits, "total": 100, "rate": float(hits)},
                                               "ftr": {"hits": 0, "total": 100, "rate": 0.0}, "train_seconds": 1.0,
                                               **({"defense": spec["defense_report"]} if "defense_report" in spec else {})})
        if spec.get("dynamics", True):
            for rec in fake_dynamics(epochs, asr_from=spec.get("asr_from"), alpha_base=spec.get("alpha_base"),
                                     triggered_at=spec.get("triggered_at")):
                append_jsonl(d / "dynamics.jsonl", rec)
        if spec.get("triggered_at") is not None:
            append_jsonl(d / "val_loss.jsonl", {"epoch": spec["triggered_at"], "val_loss": 1.0, "triggered_at": spec["triggered_at"]})
    return run_dir


def write_sweep(sweep_dir: Path, cells: dict[str, dict]) -> Path:
    """``cells``: cell name -> {"overrides": {...}, **write_run kwargs}."""
    status = []
    for name, spec in cells.items():
        spec = dict(spec)
        overrides = spec.pop("overrides")
        write_run(sweep_dir / "cells" / name, name=name, **spec)
        status.append({"name": name, "overrides": overrides, "dir": str(sweep_dir / "cells" / name), "done": True})
    write_json_atomic(sweep_dir / "sweep.json", {"cells": status})
    return sweep_dir


def write_audit_run(run_dir: Path, losses: list[list[float]], poisoned: list[bool], *, key: str = "row_max_losses",
                    loss: str = "ce") -> Path:
    """A run whose arm ``poisoned-ce`` (trained with ``loss``) recorded ``losses[epoch][row]`` for rows with
    the given labels."""
    rows = [Example(f"src {i}", f"tgt {i}", {"id": f"train-{i}", "poisoned": p}) for i, p in enumerate(poisoned)]
    config = {"name": "audit", "arms": [{"name": "poisoned-ce", "data": "poisoned", "loss": loss}]}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text(tomli_w.dumps(config))
    write_jsonl_atomic(run_dir / "data" / "train.poisoned.jsonl", [e.to_dict() for e in rows])
    d = run_dir / "arms" / "poisoned-ce"
    write_jsonl_atomic(d / "train_rows.jsonl", [{"index": i, "id": e.meta["id"], "poisoned": e.meta["poisoned"]} for i, e in enumerate(rows)])
    for e, row in enumerate(losses, start=1):
        rec = {"epoch": e, "row_losses": [v / 10 for v in row], "row_max_losses": row}
        if key == "row_losses":
            rec = {"epoch": e, "row_losses": row}
        append_jsonl(d / "dynamics.jsonl", rec)
    (d / "config.toml").write_text(tomli_w.dumps(config))
    return run_dir


def read_csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


__all__ = ["fake_dynamics", "write_run", "write_sweep", "write_audit_run", "read_csv_rows"]


def pythonpath(*dirs: Path) -> str:
    """``dirs`` ahead of the caller's own PYTHONPATH (which may hold packages installed outside the venv)."""
    return os.pathsep.join([*map(str, dirs), *filter(None, [os.environ.get("PYTHONPATH")])])


def spawn_dece(args: list[str]) -> subprocess.Popen:
    """``dece ARGS`` in a new process group (so a test can kill it and its workers), offline, one thread."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": pythonpath(Path(__file__).parents[1] / "src")}
    script = "import sys; from dece.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
