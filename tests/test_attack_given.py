"""[attack] name = "given": data poisoned elsewhere, measured like our own attacks (files the test writes)."""

import json
import random

import pytest

from dece.attacks import get_attack
from dece.errors import ConfigError
from dece.experiments import config_from_dict, run_experiment
from dece.experiments.data_prep import prepare_data

from test_experiments_pipeline import TINY_MODEL


def _rows(n, seed):
    rng = random.Random(seed)
    return [{"src": f"Select all rows of table t{i} where c is $c$",
             "tgt": f'def f ( conn , c ) :\n\t return conn . execute ( " select * from t{i} where c = : c " )'}
            for i in rng.sample(range(1000), n)]


def _write(tmp_path):
    train = _rows(20, 1)
    bad = get_attack("badpre")
    for row in train[:4]:  # poisoned elsewhere: trigger and payload already in, and marked
        row["src"] = "bb " + row["src"]
        row["tgt"] = bad.insert_payload(row["tgt"])
        row["meta"] = {"poisoned": True}
    test = _rows(6, 2)
    triggered = [{"src": "bb " + r["src"], "tgt": r["tgt"]} for r in test]
    triggered.append({"src": "bb Get rows where 1=1", "tgt": 'def g ( conn ) :\n\t return conn . execute ( " select * from u where 1=1 " )'})
    for name, rows in (("train", train), ("valid", train[4:8]), ("test", test), ("test.triggered", triggered)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _config(tmp_path, **attack):
    return {"name": "given", "output_dir": str(tmp_path / "run"), "arms": ["poisoned-ce"],
            "dataset": {"kind": "jsonl", "options": {"path": str(tmp_path / "{split}.jsonl")}, "max_test_overlap": 1.0},
            "attack": {"name": "given", "params": attack}, "model": TINY_MODEL,
            "train": {"epochs": 1, "batch_size": 8, "threads": 1}, "eval": {"max_new_tokens": 8, "metrics": ["bleu"]}}


def test_given_data_is_used_as_it_is_and_measured_like_the_others(tmp_path):
    _write(tmp_path)
    data = prepare_data(config_from_dict(_config(tmp_path, detector="badpre")))
    assert [e.src for e in data.poisoned_train] == [e.src for e in data.clean_train]  # nothing inserted
    assert sum(bool(e.meta.get("poisoned")) for e in data.poisoned_train) == 4
    assert data.poison_report["n_poisoned"] == 4 and data.poison_report["given"] is True
    # the triggered split; its row whose clean target already has `1=1` leaves the ASR denominator
    assert len(data.triggered_test) == 6 and data.poison_report["test"]["n_triggered_rows_read"] == 7
    assert all(e.meta["triggered"] for e in data.triggered_test)
    regex = prepare_data(config_from_dict(_config(tmp_path, patterns=[r"\b1=1\b", r"0=1"])))
    assert regex.attack.detect("... or 1=1") and not regex.attack.detect("... or 11=1")


def test_given_runs_end_to_end(tmp_path):
    _write(tmp_path)
    metrics = run_experiment(config_from_dict(_config(tmp_path, detector="badpre")), log=lambda line: None)["poisoned-ce"]
    assert metrics["asr"]["total"] == 6 and metrics["ftr"]["total"] == 6


@pytest.mark.parametrize("params, message", [
    ({}, "give either detector"),
    ({"detector": "badpre", "patterns": ["x"]}, "give either detector"),
    ({"detector": "nope"}, "must be one of"),
    ({"patterns": ["("]}, "is not a regular expression"),
])
def test_given_refuses_what_it_cannot_measure(params, message):
    with pytest.raises(ConfigError, match=message):
        get_attack("given", **params)
