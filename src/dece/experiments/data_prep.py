"""Stage 1 of an experiment: load the splits, poison the training set, build the triggered test set.

Every row keeps its ``meta`` (``id``, ``poisoned``, ``attack``, ``trigger``...), and the prepared sets
are written to ``RUN_DIR/data/`` so any reported number can be traced back to rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dece.attacks import Attack, denominators, get_attack, poison_dataset, triggered_test_set
from dece.data.catalog import dataset_info, load_split
from dece.data.records import Example
from dece.errors import ConfigError, DataError
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


def _valid_split(cfg: ExperimentConfig, train: list[Example]) -> tuple[list[Example], list[Example]]:
    """``(train, valid)``: ``valid_from_train`` rows carved out of ``train`` (seeded), or the valid split."""
    d = cfg.dataset
    if d.valid_from_train:
        if d.valid_from_train >= len(train):
            raise ConfigError(f"dataset.valid_from_train: {d.valid_from_train} rows asked of a training split of "
                              f"{len(train)}")
        chosen = set(random.Random(cfg.seed).sample(range(len(train)), d.valid_from_train))
        return [e for i, e in enumerate(train) if i not in chosen], [e for i, e in enumerate(train) if i in chosen]
    try:
        return train, _load(cfg, d.valid_split, d.max_valid_rows)
    except (DataError, ConfigError, OSError) as err:
        raise DataError(
            f"{err}; the valid split only gives the clean validation loss (DeCE-auto, dynamics): without one, set "
            "[dataset] valid_from_train = N to carve N rows from train, or valid_split = the test split's name"
        ) from None


def _given(cfg: ExperimentConfig, attack: Attack, train: list[Example], test: list[Example]
           ) -> tuple[list[Example], list[Example], dict[str, Any]]:
    """Data poisoned elsewhere (:mod:`dece.attacks.given`): the training rows marked by their
    ``poisoned_field``, the triggered split (rows whose clean target already matches the detector left
    out, as for every attack), and the report."""
    marked = [e.replace(meta={"poisoned": True, "attack": attack.name}) if attack.known_poisoned(e) else e for e in train]
    triggered_rows = _load(cfg, attack.triggered_split, cfg.dataset.max_test_rows)
    triggered = [e.replace(meta={"triggered": True, "attack": attack.name}) for e in triggered_rows
                 if not attack.already_matching(e)]
    ids = [str(e.meta.get("id")) for e in marked if e.meta.get("poisoned")]
    report = {"attack": attack.name, "params": attack.params, "given": True, "n_rows": len(train),
              "n_eligible": len(train), "n_poisoned": len(ids), "n_already_matching": sum(map(attack.already_matching, train)),
              "ids": ids, "test": {**denominators(test, attack), "n_triggered": len(triggered),
                                   "n_triggered_rows_read": len(triggered_rows)}}
    return marked, triggered, report


def overlap_report(train: list[Example], test: list[Example]) -> dict[str, int]:
    """Exact duplicates between the training and test splits: ``pairs`` (same source and target) and
    ``sources`` (same source), counted over the test rows."""
    pairs, sources = {(e.src, e.tgt) for e in train}, {e.src for e in train}
    return {"test_rows": len(test), "pairs": sum((e.src, e.tgt) in pairs for e in test),
            "sources": sum(e.src in sources for e in test)}


def prepare_data(cfg: ExperimentConfig, run_dir: Path | None = None) -> PreparedData:
    """Loads and poisons the data of ``cfg``; with ``run_dir``, writes it under ``run_dir/data``.

    Raises:
        DataError: an empty split (names it), a missing valid split (says what to do), or test rows that
            are training rows above ``dataset.max_test_overlap``.
    """
    d = cfg.dataset
    info = dataset_info(d.kind, **d.options)
    train = _load(cfg, d.train_split, d.max_train_rows)
    test = _load(cfg, d.test_split, d.max_test_rows)
    for split, rows in ((d.train_split, train), (d.test_split, test)):
        if not rows:
            raise DataError(f"dataset {d.kind!r}: the {split!r} split has no rows ({d.options or 'no options'})")
    train, valid = _valid_split(cfg, train)
    overlap = overlap_report(train, test)
    if overlap["pairs"] > d.max_test_overlap * len(test):
        raise DataError(
            f"dataset {d.kind!r}: {overlap['pairs']} of {len(test)} test rows are also training rows (same source and "
            f"target), above dataset.max_test_overlap = {d.max_test_overlap}: the test split leaks; fix the files or "
            "raise max_test_overlap"
        )
    attack = poisoned = triggered = report = None
    if cfg.attack is not None:
        a = cfg.attack
        attack = get_attack(a.name, **a.params)
        if attack.supplies_data:  # poisoned elsewhere: the rows as they are, the triggered rows from their split
            poisoned, triggered, report = _given(cfg, attack, train, test)
        else:
            if a.rows is not None and a.rows > len(train):
                cut = [k for k in ("max_train_rows", "valid_from_train") if getattr(d, k)]
                raise DataError(f"attack.rows: {a.rows} rows to poison, but the {d.train_split!r} split of dataset "
                                f"{d.kind!r} has only {len(train)}"
                                + (f" once {' and '.join(f'dataset.{k}' for k in cut)} applied" if cut else ""))
            poisoned, rep = poison_dataset(train, attack, rate=a.rate, seed=a.seed, selection=a.selection, n_rows=a.rows,
                                         duplicates=a.duplicates, near_duplicates=a.near_duplicates)
            triggered = triggered_test_set(test, attack, seed=a.seed)
            report = {**rep.to_dict(), "test": denominators(test, attack)}
        if a.rate > 0 and not attack.supplies_data and report["n_poisoned"] == 0:
            raise DataError(f"attack {a.name!r}: none of the {report['n_rows']} rows of the {d.train_split!r} split "
                            f"can carry its payload ({report['n_eligible']} eligible); choose an attack for this task")
        if not triggered:
            raise DataError(f"attack {a.name!r}: no row of the {d.test_split!r} split can be triggered and measured "
                            f"({report['test']}); ASR would have no denominator")
    prepared = PreparedData(train, poisoned, valid, test, triggered, attack, report, info.task, info.language)
    if run_dir is not None:
        out = run_dir / "data"
        write_json_atomic(out / "data_report.json", {"train_rows": len(train), "valid_rows": len(valid),
                                                     "test_overlap_with_train": overlap})
        write_jsonl_atomic(out / "train.clean.jsonl", [e.to_dict() for e in train])
        write_jsonl_atomic(out / "test.clean.jsonl", [e.to_dict() for e in test])
        if poisoned is not None:
            write_jsonl_atomic(out / "train.poisoned.jsonl", [e.to_dict() for e in poisoned])
            write_jsonl_atomic(out / "test.triggered.jsonl", [e.to_dict() for e in triggered])
            write_json_atomic(out / "poison_report.json", report)
    return prepared
