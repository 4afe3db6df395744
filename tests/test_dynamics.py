"""The dynamics file: one record per epoch after a resume rewrote some, torn lines after a kill, config."""

import pytest

from dece.errors import ConfigError
from dece.experiments.dynamics import DynamicsConfig, load_dynamics
from dece.experiments.store import append_jsonl, read_records


def test_load_dynamics_keeps_the_last_record_of_each_epoch(tmp_path):
    path = tmp_path / "dynamics.jsonl"
    for rec in ({"epoch": 1, "asr": 0.0}, {"epoch": 2, "asr": 5.0}, {"epoch": 2, "asr": 7.0}, {"epoch": 3, "asr": 9.0}):
        append_jsonl(path, rec)
    assert [(r["epoch"], r["asr"]) for r in load_dynamics(path)] == [(1, 0.0), (2, 7.0), (3, 9.0)]
    assert load_dynamics(tmp_path / "missing.jsonl") == []


def test_append_after_a_torn_line_loses_nothing_before_or_after(tmp_path):
    path = tmp_path / "log.jsonl"
    append_jsonl(path, {"a": 1})
    with open(path, "a") as f:
        f.write('{"b": 2, "tor')  # killed mid-append
    append_jsonl(path, {"c": 3})
    append_jsonl(path, {"d": 4})
    assert read_records(path) == [{"a": 1}, {"c": 3}, {"d": 4}]


def test_dynamics_config_checks_val_rows():
    DynamicsConfig(val_rows=0).validate("dynamics")
    with pytest.raises(ConfigError, match="dynamics.val_rows: must be an integer >= 0"):
        DynamicsConfig(val_rows=-1).validate("dynamics")
