"""Datasets by name: kinds, options, splits, task and language."""

from __future__ import annotations

import pytest

from dece.data.catalog import DATASETS, dataset_info, load_split
from dece.data.io import write_csv, write_jsonl, write_pairs
from dece.data.records import Example
from dece.errors import ConfigError, UnknownNameError


def test_builtin_kind():
    rows = load_split("builtin", "valid", n=20, seed=4)
    assert len(rows) == 20 and rows[0].meta["id"] == "valid-0"
    assert dataset_info("builtin").task == "generation"


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "pairs"])
def test_file_kinds_fill_split_into_paths(tmp_path, fmt):
    rows = [Example("describe it", "def f ( ) :\n\t pass" if fmt != "pairs" else "code", {"id": "x"})]
    if fmt == "pairs":
        write_pairs(rows, tmp_path / "test.src", tmp_path / "test.tgt")
        options = {"src_path": str(tmp_path / "{split}.src"), "tgt_path": str(tmp_path / "{split}.tgt")}
    else:
        (write_csv if fmt == "csv" else write_jsonl)(rows, tmp_path / f"test.{fmt}")
        options = {"path": str(tmp_path / f"{{split}}.{fmt}")}
    (loaded,) = load_split(fmt, "test", **options)
    assert (loaded.src, loaded.tgt) == (rows[0].src, rows[0].tgt)
    assert loaded.meta["id"] == ("x" if fmt != "pairs" else "test-0")
    assert dataset_info(fmt, language="java", **options).language == "java"


def test_presets_carry_task_and_language():
    assert (dataset_info("lyra").task, dataset_info("lyra").language) == ("generation", "python")
    assert dataset_info("bugs2fix_small").language == "java"
    assert (dataset_info("devign").task, dataset_info("devign").language) == ("classification", "c")
    assert dataset_info("code_docstring_py").language == "python"
    assert set(DATASETS.names()) >= {"builtin", "csv", "jsonl", "pairs", "devign", "lyra", "bugs2fix_small",
                                     "code_docstring_py"}


def test_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(ConfigError, match="train on valid, test on test"):
        load_split("bugs2fix_small", "train")
    with pytest.raises(ConfigError, match="unknown option 'nn'; valid options: n, seed"):
        load_split("builtin", "train", nn=3)
    with pytest.raises(ConfigError, match=r"dataset option n \(rows of the builtin train split\).*got -5"):
        load_split("builtin", "train", n=-5)
    with pytest.raises(ConfigError, match=r"dataset option seed \(of the builtin train split\): must be an integer from 0"):
        load_split("builtin", "train", seed=-1)
    with pytest.raises(ConfigError, match="option 'path' is required"):
        load_split("csv", "train")
    with pytest.raises(ConfigError, match="'task'"):
        dataset_info("csv", task="ranking")
    with pytest.raises(UnknownNameError, match="lyra"):
        load_split("lyra2", "train")
    with pytest.raises(ConfigError, match="valid splits: valid, test"):
        load_split("devign", "train", data_root=str(tmp_path))
