"""[dataset] kind = "hf": files the test writes (parquet, a JSON array with its own field names, JSON lines,
a save_to_disk folder, CodeXGLUE-style token lists), read through `datasets`; nothing is downloaded."""

import json
import logging

import pytest

datasets = pytest.importorskip("datasets")

from dece.data.catalog import load_split  # noqa: E402
from dece.errors import ConfigError, DataError  # noqa: E402
from dece.experiments import config_from_dict  # noqa: E402
from dece.experiments.data_prep import prepare_data  # noqa: E402

ROWS = [{"question": f"Select all rows of table t{i}", "snippet": f'sql = " select * from t{i} "', "qid": 100 + i}
        for i in range(12)]


def _write_json_arrays(tmp_path):
    for split, rows in (("train", ROWS[:8]), ("valid", ROWS[8:10]), ("test", ROWS[10:])):
        (tmp_path / f"{split}.json").write_text(json.dumps(rows))


def test_a_json_array_with_its_own_field_names(tmp_path):
    _write_json_arrays(tmp_path)
    rows = load_split("hf", "train", path="json", data_files=str(tmp_path / "{split}.json"),
                      src_field="question", tgt_field="snippet", id_field="qid")
    assert [(e.src, e.tgt, e.meta["id"]) for e in rows[:2]] == [
        (ROWS[0]["question"], ROWS[0]["snippet"], "100"), (ROWS[1]["question"], ROWS[1]["snippet"], "101")]
    with pytest.raises(DataError, match=r"row 1, field 'code': missing; the rows have: question, snippet, qid"):
        load_split("hf", "test", path="json", data_files=str(tmp_path / "{split}.json"), src_field="code")


def test_parquet_jsonl_and_a_saved_dataset(tmp_path):
    table = datasets.Dataset.from_list([{"code_tokens": ["def", "f", "(", ")", ":"], "docstring": "does f"}] * 3)
    table.to_parquet(str(tmp_path / "test.parquet"))
    rows = load_split("hf", "test", path="parquet", data_files=str(tmp_path / "{split}.parquet"),
                      src_field="code_tokens", tgt_field="docstring", join_tokens=True)
    assert rows[0].src == "def f ( ) :" and rows[0].tgt == "does f" and len(rows) == 3
    with pytest.raises(DataError, match="expected text, got list .*join_tokens = true"):
        load_split("hf", "test", path="parquet", data_files=str(tmp_path / "{split}.parquet"),
                   src_field="code_tokens", tgt_field="docstring")
    datasets.DatasetDict({"train": table, "test": table}).save_to_disk(str(tmp_path / "saved"))
    saved = load_split("hf", "train", path=str(tmp_path / "saved"), src_field="code_tokens", tgt_field="docstring",
                       join_tokens=True)
    assert saved[0].src == "def f ( ) :"
    with pytest.raises(DataError, match="no split 'valid'; its splits: train, test"):
        load_split("hf", "valid", path=str(tmp_path / "saved"), src_field="code_tokens", tgt_field="docstring")
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    lines = load_split("hf", "train", path="json", data_files={"train": str(tmp_path / "x.jsonl")},
                       src_field="question", tgt_field="snippet")
    assert len(lines) == 12


def test_an_experiment_on_an_hf_dataset_and_its_leak_checks(tmp_path):
    _write_json_arrays(tmp_path)
    data = {"name": "hf", "output_dir": str(tmp_path / "run"), "arms": ["poisoned-ce"],
            "dataset": {"kind": "hf", "options": {"path": "json", "data_files": str(tmp_path / "{split}.json"),
                                                  "src_field": "question", "tgt_field": "snippet"}},
            "attack": {"name": "badpre", "rate": 0.25},
            "eval": {"metrics": ["bleu"]}}
    prepared = prepare_data(config_from_dict(data))
    assert len(prepared.clean_train) == 8 and prepared.poison_report["n_poisoned"] == 2
    assert len(prepared.triggered_test) == 2
    data["dataset"]["options"]["data_files"] = str(tmp_path / "train.json")
    with pytest.raises(ConfigError, match="options.data_files: .* has no '\\{split\\}'"):
        config_from_dict(data)
    data["dataset"]["options"] = {"path": str(tmp_path / "train.json"), "src_field": "question", "tgt_field": "snippet"}
    with pytest.raises(ConfigError, match="is one file: every split would read it"):
        config_from_dict(data)


@pytest.mark.parametrize("suffix, extra", [(".json", []), (".parquet", []), ("", ["--format", "hf"]), (".jsonl", [])])
def test_poison_reads_and_writes_the_ecosystems_formats_with_its_field_names(tmp_path, suffix, extra, capsys):
    from dece.cli import main
    from dece.data.io.formats import FORMATS, infer_format

    src = tmp_path / "in.json"
    src.write_text(json.dumps(ROWS))
    out = tmp_path / f"out{suffix}"
    argv = ["poison", "--attack", "badpre", "--rate", "0.5", "--input", str(src), "--output", str(out),
            "--src-field", "question", "--tgt-field", "snippet"]
    if extra:  # --format applies to every path: read the JSON array first, then write the folder
        mid = tmp_path / "mid.jsonl"
        assert main(argv[:8] + [str(mid), "--src-field", "question", "--tgt-field", "snippet"]) == 0
        argv = ["poison", "--attack", "badpre", "--rate", "0", "--input", str(mid), "--output", str(out),
                "--src-field", "question", "--tgt-field", "snippet"]
        fmt = FORMATS.get("jsonl")
        rows_in = fmt.read([mid], src_field="question", tgt_field="snippet")
        FORMATS.get("hf").write(rows_in, [out], src_field="question", tgt_field="snippet")
        back = FORMATS.get("hf").read([out], src_field="question", tgt_field="snippet")
    else:
        assert main(argv) == 0
        back = infer_format([out]).read([out], src_field="question", tgt_field="snippet")
    assert len(back) == 12 and sum(bool(e.meta.get("poisoned")) for e in back) == 6  # meta kept
    assert all(e.src.startswith("Select") or " bb" in e.src or e.src.startswith("bb") for e in back)


def test_a_classification_dataset_with_a_label_field(tmp_path):
    rows = [{"func": f"int f{i} ( ) {{ return {i} ; }}", "target": i % 2} for i in range(6)]
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "test.parquet"))
    out = load_split("hf", "test", path="parquet", data_files=str(tmp_path / "{split}.parquet"), src_field="func",
                     label_field="target", task="classification", language="c")
    assert [e.tgt for e in out] == ["0", "1", "0", "1", "0", "1"] and out[1].src.startswith("int f1")


def test_a_null_field_and_an_unreadable_file_are_named(tmp_path):
    (tmp_path / "rows.json").write_text(json.dumps([{"src": "a", "tgt": "b"}, {"src": "c"}]))
    with pytest.raises(DataError, match=r"rows.json, split 'train', row 2, field 'tgt': missing \(null\); the row has: src"):
        load_split("hf", "train", path="json", data_files=str(tmp_path / "rows.json"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    logged = []
    handler = logging.Handler()
    handler.emit = logged.append
    logging.getLogger("datasets").addHandler(handler)
    try:
        with pytest.raises(DataError, match=r"bad.parquet, split 'train': "):
            load_split("hf", "train", path="parquet", data_files=str(tmp_path / "bad.parquet"))
    finally:
        logging.getLogger("datasets").removeHandler(handler)
    assert [r.getMessage() for r in logged] == []  # said once, by the error, not also by the datasets logger
    datasets.Dataset.from_list(ROWS * 20).to_parquet(str(tmp_path / "damaged.parquet"))
    damaged = bytearray((tmp_path / "damaged.parquet").read_bytes())
    damaged[100:300] = bytes(200)  # a damaged data page; the footer is intact
    (tmp_path / "damaged.parquet").write_bytes(bytes(damaged))
    (tmp_path / "truncated.json").write_text('[{"src": "a", "tgt": "b"}, {"src": ')
    for name, builder in (("damaged.parquet", "parquet"), ("truncated.json", "json")):
        with pytest.raises(DataError, match=rf"{name}, split 'train': \S"):
            load_split("hf", "train", path=builder, data_files=str(tmp_path / name))
