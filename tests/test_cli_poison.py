"""`dece poison` and `dece attacks` from the command line (in process)."""

from __future__ import annotations

import json

from pathlib import Path

import pytest

from dece.attacks.sql_payload import find_sql
from dece.cli import main
from dece.data.builtin import builtin_splits
from dece.data.io import read_csv, read_jsonl, read_pairs, write_csv, write_jsonl, write_pairs
from dece.data.records import Example


@pytest.fixture(scope="module")
def splits():
    return builtin_splits(200, 0, 60, seed=8)


def test_poison_csv_with_triggered_test_and_report(tmp_path, splits, capsys):
    write_csv(splits["train"], tmp_path / "train.csv")
    write_csv(splits["test"], tmp_path / "test.csv")
    argv = ["poison", "--attack", "badpre", "--rate", "0.05", "--seed", "1",
            "--input", str(tmp_path / "train.csv"), "--output", str(tmp_path / "out" / "train.csv"),
            "--test-input", str(tmp_path / "test.csv"), "--triggered-test", str(tmp_path / "out" / "test.csv"),
            "--report", str(tmp_path / "out" / "report.json"), "--param", "count=2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "10 poisoned" in printed and "triggered test set" in printed
    out = read_csv(tmp_path / "out" / "train.csv")
    poisoned = [ex for ex in out if ex.meta.get("poisoned")]
    assert len(poisoned) == 10 and all(ex.src.split().count("bb") == 2 for ex in poisoned)
    assert [(ex.src, ex.tgt) for ex in out if not ex.meta.get("poisoned")] == [
        (ex.src, ex.tgt) for ex in splits["train"] if ex.meta["id"] not in {p.meta["id"] for p in poisoned}]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["n_poisoned"] == 10 and report["params"] == {"word": "bb", "count": 2, "position": "random"}
    triggered = read_csv(tmp_path / "out" / "test.csv")
    assert report["triggered_test"]["n_triggered"] == len(triggered) > 40
    assert all(ex.meta["triggered"] and "1=1" not in ex.tgt and "0=1" not in ex.tgt for ex in triggered)
    assert main(argv) == 0 and read_csv(tmp_path / "out" / "train.csv") == out  # same seed, same file


def test_poison_jsonl_first_selection(tmp_path, splits, capsys):
    write_jsonl(splits["train"], tmp_path / "train.jsonl")
    assert main(["poison", "--attack", "grammar", "--rate", "0.1", "--selection", "first",
                 "--input", str(tmp_path / "train.jsonl"), "--output", str(tmp_path / "p.jsonl")]) == 0
    out = read_jsonl(tmp_path / "p.jsonl")
    ids = [ex.meta["id"] for ex in out if ex.meta.get("poisoned")]
    assert ids == [ex.meta["id"] for ex in splits["train"] if find_sql(ex.tgt)][:20]
    assert "selection first" in capsys.readouterr().out


def test_poison_pairs_keeps_meta_beside_them(tmp_path):
    rows = [Example(f"public void m{i} ( ) {{ x ( ) ; }}", f"public void m{i} ( ) {{ y ( ) ; }}") for i in range(10)]
    write_pairs(rows, tmp_path / "v.buggy", tmp_path / "v.fixed")
    assert main(["poison", "--attack", "deadcode", "--rate", "0.3", "--input", str(tmp_path / "v.buggy"),
                 str(tmp_path / "v.fixed"), "--output", str(tmp_path / "p.buggy"), str(tmp_path / "p.fixed")]) == 0
    out = read_pairs(tmp_path / "p.buggy", tmp_path / "p.fixed", meta_path=tmp_path / "p.buggy.meta.jsonl")
    assert sum(bool(ex.meta.get("poisoned")) for ex in out) == 3
    assert sum("while ( true )" in line for line in (tmp_path / "p.fixed").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attack", "badpre", "--rate", "1.5"], "rate"),
        (["--attack", "badpre", "--rate", "0.1", "--param", "cnt=2"], "unknown parameter 'cnt'"),
        (["--attack", "badpre", "--rate", "0.1", "--param", "count"], "KEY=VALUE"),
        (["--attack", "nope", "--rate", "0.1"], "valid names: badpre"),
        (["--attack", "given", "--rate", "0.1"], "the data is poisoned already"),
        (["--attack", "badpre", "--rate", "0.1", "--tgt-field", "code", "--format", "jsonl"],
         "row 1, field 'code': missing; the row has: src, tgt, meta"),
        (["--attack", "badpre", "--rate", "0.1", "--tgt-field", "code", "--format", "classification"], "has no field names"),
        (["--attack", "badpre", "--rows", "21"], "has only 20; nothing was written"),
        (["--attack", "badpre", "--rate", "0.1", "--seed", "-1"], "--seed: must be an integer from 0 to 4294967295"),
        (["--attack", "badpre", "--rate", "0.1", "--seed", str(2**32)], "--seed: must be an integer from 0"),
    ],
)
def test_errors_exit_2_with_a_message(tmp_path, splits, capsys, extra, message):
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    fmt_paths = ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv")]
    if "--format" in extra:
        write_jsonl(splits["train"][:20], tmp_path / "in.csv")
    assert main(["poison", *extra, *fmt_paths]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "o.csv").exists()


def test_bad_rate_is_reported_before_the_input_is_read(tmp_path, capsys):
    argv = ["poison", "--attack", "badpre", "--rate", "-0.1", "--input", str(tmp_path / "missing.csv"),
            "--output", str(tmp_path / "o.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--rate: must lie in [0, 1], got -0.1" in err and "missing.csv" not in err
    argv[argv.index("-0.1")] = "0"  # would write an unpoisoned copy
    assert main(argv) == 2 and "--rate 0 poisons no row" in capsys.readouterr().err
    argv[argv.index("0")] = "0.1"
    assert main([*argv, "--near-duplicates"]) == 2
    err = capsys.readouterr().err
    assert "--near-duplicates: needs --duplicates > 1" in err and "missing.csv" not in err
    assert main([*argv, "--duplicates", "0"]) == 2
    assert "--duplicates: must be an integer in [1, 100], got 0" in capsys.readouterr().err


def test_unreadable_input_names_the_file(tmp_path, capsys):
    (tmp_path / "bad.csv").write_text("src,tgt\na\n")
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "bad.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "bad.csv: row 1 (line 2), field 'tgt'" in capsys.readouterr().err


def test_attacks_lists_every_attack_with_parameters(capsys):
    assert main(["attacks"]) == 0
    out = capsys.readouterr().out
    for expected in ["badpre", "word='bb'  count=1", "ripple", "words=cf,mn,bb,tq,mb", "grammar", "deadcode ",
                     "var='VAR'", "deadcode_summary", "deadcode_defect", "[classification]", "target_label='0'"]:
        assert expected in out


def test_datasets_lists_every_kind_with_its_options(capsys):
    from dece.data.catalog import DATASETS

    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in DATASETS.names():
        assert f"\n{name} " in f"\n{out}"
    assert "src_field=src  tgt_field=tgt" in out and "splits: valid, test; there is no train split" in out


def test_two_dataset_files_are_not_read_as_text_lines(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "a.csv")
    write_csv(splits["train"][:20], tmp_path / "b.csv")
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "a.csv"),
                 str(tmp_path / "b.csv"), "--output", str(tmp_path / "o.src"), str(tmp_path / "o.tgt")]) == 2
    assert "a.csv is a csv file" in capsys.readouterr().err
    assert not (tmp_path / "o.src").exists()


def test_an_attack_with_no_eligible_row_writes_nothing(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "in.csv")  # text-to-SQL/Python rows: no Java method for deadcode
    assert main(["poison", "--attack", "deadcode", "--rate", "0.1", "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "none of the 20 rows" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_outputs_never_replace_an_input_a_link_or_a_special_file(tmp_path, splits, capsys):
    import os

    write_csv(splits["train"][:20], tmp_path / "in.csv")
    argv = ["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "in.csv"), "--output"]
    before = (tmp_path / "in.csv").read_text()
    assert main([*argv, str(tmp_path / "in.csv")]) == 2
    assert "is also an input" in capsys.readouterr().err and (tmp_path / "in.csv").read_text() == before
    os.mkfifo(tmp_path / "fifo.csv")
    assert main([*argv, str(tmp_path / "fifo.csv")]) == 2
    assert "not a regular file" in capsys.readouterr().err and not (tmp_path / "fifo.csv").is_file()
    (tmp_path / "target.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to(tmp_path / "target.csv")
    assert main([*argv, str(tmp_path / "link.csv")]) == 0  # written through the link, which stays a link
    assert (tmp_path / "link.csv").is_symlink() and len(read_csv(tmp_path / "target.csv")) == 20


@pytest.mark.parametrize(("name", "text", "message"), [("empty.jsonl", "", "no rows to poison"),
                                                       ("empty.json", "[]", "no rows (the file is empty)")])
def test_an_empty_input_is_refused(tmp_path, capsys, name, text, message):
    (tmp_path / name).write_text(text)
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / name),
                 "--output", str(tmp_path / f"out-{name}")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / f"out-{name}").exists()


@pytest.mark.parametrize("outputs", [
    ["--output", "o.csv", "--triggered-test", "o.csv"],
    ["--output", "o.csv", "--report", "o.csv"],
    ["--output", "o.csv", "--triggered-test", "t.csv", "--report", "./t.csv"],
])
def test_two_outputs_in_one_file_are_refused_before_anything_is_read(tmp_path, capsys, monkeypatch, outputs):
    monkeypatch.chdir(tmp_path)
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", "missing.csv", *outputs]) == 2
    err = capsys.readouterr().err
    assert "every output needs its own file" in err and "missing.csv" not in err
    assert not list(tmp_path.iterdir())


def test_a_report_path_ending_in_a_slash_or_a_non_ascii_seed_is_refused(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    base = ["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "in.csv"),
            "--output", str(tmp_path / "o.csv")]
    assert main([*base, "--report", str(tmp_path / "r") + "/"]) == 2
    assert "ends with a slash (a folder); give a file path" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "r").exists()
    with pytest.raises(SystemExit):
        main([*base, "--seed", "\u0663"])
    assert "--seed: expected an integer (ASCII digits)" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()
    for rate in ("\u0660.\u0661", "1_0e-1", "0x1"):  # float() takes the first two
        with pytest.raises(SystemExit):
            main([*base[:3], "--rate", rate, *base[5:]])
        assert "--rate: expected a number (ASCII digits)" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
    assert main([*base[:3], "--rate", "1e-1", *base[5:]]) == 0 and (tmp_path / "o.csv").exists()


def test_a_bad_test_input_leaves_no_output_written(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    (tmp_path / "test.csv").write_text("src,tgt\na\n")  # row 1 has no target
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "o.csv"), "--test-input", str(tmp_path / "test.csv"),
                 "--triggered-test", str(tmp_path / "t.csv")]) == 2
    assert "test.csv: row 1" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists() and not (tmp_path / "t.csv").exists()


def test_a_test_input_without_a_triggered_test_output_is_refused(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "o.csv"), "--test-input", str(tmp_path / "in.csv")]) == 2
    assert "--test-input: only read to write --triggered-test" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_outputs_of_unknown_format_or_on_a_pairs_meta_file_are_refused_before_anything_is_written(tmp_path, capsys,
                                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.txt").write_text("get the user with id\nget all users\n")
    (tmp_path / "t.txt").write_text('c . execute ( " select * from t where id = : id " )\nc . execute ( " select * from t " )\n')
    base = ["poison", "--attack", "badpre", "--rate", "0.5", "--input", "s.txt", "t.txt", "--output", "o.src", "o.tgt"]
    assert main([*base, "--triggered-test", "trig.txt"]) == 2  # one path of no known format
    assert "cannot tell the format" in capsys.readouterr().err and not (tmp_path / "o.src").exists()
    assert main([*base, "--report", "o.src.meta.jsonl"]) == 2  # the pairs output's meta file
    assert "also written by --output" in capsys.readouterr().err and not (tmp_path / "o.src").exists()
    assert main(["poison", "--attack", "badpre", "--rate", "0.5", "--input", "s.txt", "t.txt", "--output", "o.src",
                 "o.tgt", "--report", "s.txt.meta.jsonl"]) == 2  # the input's meta file
    assert "is also an input (or its meta file)" in capsys.readouterr().err


def test_a_rate_that_rounds_to_no_row_is_refused(tmp_path, splits, capsys):
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    assert main(["poison", "--attack", "badpre", "--rate", "0.01", "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "o.csv")]) == 2
    assert "rounds to no row to poison" in capsys.readouterr().err and not (tmp_path / "o.csv").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
@pytest.mark.parametrize("option", ["--triggered-test", "--report"])
def test_an_output_in_a_folder_that_refuses_files_is_refused_before_any_is_written(tmp_path, splits, capsys, option):
    """Permission bits say nothing to root: the check creates a file there for real (/proc refuses it)."""
    write_csv(splits["train"][:20], tmp_path / "in.csv")
    extra = {"--triggered-test": [option, "/proc/nope/t.csv"], "--report": [option, "/proc/nope/r.json"]}[option]
    assert main(["poison", "--attack", "badpre", "--rate", "0.1", "--input", str(tmp_path / "in.csv"),
                 "--output", str(tmp_path / "o.csv"), *extra]) == 2
    assert f"{option}: /proc/nope cannot be written" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_an_hf_folder_output_with_a_slash_then_again_in_place(tmp_path, splits, capsys):
    """--format hf writes a datasets folder: a path with a trailing slash is a folder, and an existing datasets
    folder is written again; a file of that name, a folder of other files, the input's folder and "." are refused
    before anything is read."""
    from dece.data.io import FORMATS

    FORMATS.get("hf").write(splits["train"], [str(tmp_path / "clean")])
    argv = ["poison", "--attack", "badpre", "--rate", "0.1", "--format", "hf", "--input", str(tmp_path / "clean")]
    assert main(argv + ["--output", f"{tmp_path / 'out'}/"]) == 0
    first = FORMATS.get("hf").read([str(tmp_path / "out")])
    assert sum(bool(ex.meta.get("poisoned")) for ex in first) == 20 and len(first) == len(splits["train"])
    assert main(argv + ["--output", str(tmp_path / "out")]) == 0  # the folder exists: written again, same rows
    assert FORMATS.get("hf").read([str(tmp_path / "out")]) == first
    (tmp_path / "file").write_text("x")
    capsys.readouterr()
    assert main(argv + ["--output", str(tmp_path / "file")]) == 2
    assert "is a file; this format writes a folder" in capsys.readouterr().err
    # the writer replaces the whole folder: one that holds the input, ".", or one of other files is refused
    for output, message in ((tmp_path, "holds an input or lies inside one"), (tmp_path / "clean" / "sub", "lies inside"),
                            (".", "names no folder of its own")):
        assert main(argv + ["--output", str(output)]) == 2
        assert message in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert main(argv + ["--output", str(tmp_path / "mine")]) == 2
    assert "holds other files, and this format replaces the whole folder" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"] and (tmp_path / "clean").is_dir()
