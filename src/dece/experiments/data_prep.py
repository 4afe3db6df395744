"""Stage 1 of an experiment: load the splits, poison the training set, build the triggered test set.

Every row keeps its ``meta`` (``id``, ``poisoned``, ``attack``, ``trigger``...), and the prepared sets
are written to ``RUN_DIR/data/`` so any reported number can be traced back to rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dece.attacks import Attack, denominators, get_attack, poison_dataset, triggered_test_set
from dece.data.catalog import dataset_info, load_split
from dece.data.records import Example
from dece.experiments.config import ExperimentConfig
from dece.experiments.store import write_json_atomic, write_jsonl_atomic


@dataclass(frozen=True)
class PreparedData:
    clean_train: list[Example]
    poisoned_train: list[Example] | None
    valid: list[Example]
    clean_test: list[Example]
    triggered_test: list[Example] | None
    attack: Attack | None
    poison_report: dict[str, Any] | None
    task: str
    language: str

    def train_rows(self, data: str) -> list[Example]:
        """The training rows of an arm: ``"clean"`` or ``"poisoned"``."""
        if data == "poisoned":
            assert self.poisoned_train is not None, "a poisoned arm needs an attack"
            return self.poisoned_train
        return self.clean_train


def _load(cfg: ExperimentConfig, split: str, cap: int | None) -> list[Example]:
    rows = load_split(cfg.dataset.kind, split, **cfg.dataset.options)
    return rows[:cap] if cap is not None else rows


def prepare_data(cfg: ExperimentConfig, run_dir: Path | None = None) -> PreparedData:
    """Loads and poisons the data of ``cfg``; with ``run_dir``, writes it under ``run_dir/data``."""
    d = cfg.dataset
    info = dataset_info(d.kind, **d.options)
    train = _load(cfg, d.train_split, d.max_train_rows)
    valid = _load(cfg, d.valid_split, d.max_valid_rows)
    test = _load(cfg, d.test_split, d.max_test_rows)
    attack = poisoned = triggered = report = None
    if cfg.attack is not None:
        a = cfg.attack
        attack = get_attack(a.name, **a.params)
        poisoned, rep = poison_dataset(train, attack, rate=a.rate, seed=a.seed, selection=a.selection)
        triggered = triggered_test_set(test, attack, seed=a.seed)
        report = {**rep.to_dict(), "test": denominators(test, attack)}
    prepared = PreparedData(train, poisoned, valid, test, triggered, attack, report, info.task, info.language)
    if run_dir is not None:
        out = run_dir / "data"
        write_jsonl_atomic(out / "train.clean.jsonl", [e.to_dict() for e in train])
        write_jsonl_atomic(out / "test.clean.jsonl", [e.to_dict() for e in test])
        if poisoned is not None:
            write_jsonl_atomic(out / "train.poisoned.jsonl", [e.to_dict() for e in poisoned])
            write_jsonl_atomic(out / "test.triggered.jsonl", [e.to_dict() for e in triggered])
            write_json_atomic(out / "poison_report.json", report)
    return prepared
