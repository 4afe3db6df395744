"""Readers and writers: round trips, ids, meta, atomic writes, and errors naming file, row and field."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dece.data.io import (
    infer_format,
    read_classification_jsonl_gz,
    read_csv,
    read_jsonl,
    read_pairs,
    resolve_format,
    write_classification_jsonl_gz,
    write_csv,
    write_jsonl,
    write_pairs,
)
from dece.data.records import Example
from dece.errors import ConfigError, DataError

LYRA_LIKE = (
    'src,tgt\n'
    '"Use $conn$ to query all columns, get all data.","def f ( conn ) :\n'
    '\t rows = conn . execute ( "" select * from t "" ) . fetchall ( )\n'
    '\t return rows"\n'
    'Plain row without quotes,"def g ( ) :\n\t return 0"\n'
)


def _rows() -> list[Example]:
    return [
        Example("a description, with a comma", 'def f ( ) :\n\t return " x "', {"id": "train-0", "poisoned": True}),
        Example("ünïcode \"quotes\"", "line1\nline2\r\nline3", {"id": "train-1", "trigger": "bb"}),
    ]


def test_csv_reads_multiline_quoted_fields_and_sets_ids(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(LYRA_LIKE, encoding="utf-8")
    rows = read_csv(path)
    assert [r.meta["id"] for r in rows] == ["train-0", "train-1"]
    assert rows[0].tgt.splitlines()[1] == '\t rows = conn . execute ( " select * from t " ) . fetchall ( )'
    assert rows[1].src == "Plain row without quotes"


def test_csv_custom_columns_and_id_prefix(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("nl,code,other\nhello,print ( 1 ),x\n", encoding="utf-8")
    (row,) = read_csv(path, src_col="nl", tgt_col="code", id_prefix="valid")
    assert (row.src, row.tgt, row.meta) == ("hello", "print ( 1 )", {"id": "valid-0"})


@pytest.mark.parametrize(
    ("write", "read", "name"),
    [
        (write_csv, read_csv, "rows.csv"),
        (write_jsonl, read_jsonl, "rows.jsonl"),
    ],
)
def test_round_trip_keeps_src_tgt_meta(tmp_path, write, read, name):
    rows = _rows()
    write(rows, tmp_path / name)
    assert read(tmp_path / name) == rows


def test_pairs_round_trip_with_meta_and_trailing_spaces(tmp_path):
    rows = [Example("public void m ( ) { x ( ) ; } ", "a b ", {"id": "test-0"}),
            Example("int f ( ) { return 0 ; } ", "c", {"id": "test-1", "poisoned": True})]
    write_pairs(rows, tmp_path / "t.buggy", tmp_path / "t.fixed", meta_path=tmp_path / "t.meta.jsonl")
    assert (tmp_path / "t.buggy").read_text() == "public void m ( ) { x ( ) ; } \nint f ( ) { return 0 ; } \n"
    assert read_pairs(tmp_path / "t.buggy", tmp_path / "t.fixed", meta_path=tmp_path / "t.meta.jsonl") == rows
    plain = read_pairs(tmp_path / "t.buggy", tmp_path / "t.fixed")
    assert [r.meta for r in plain] == [{"id": "t-0"}, {"id": "t-1"}]


def test_pairs_split_on_newline_only(tmp_path):
    (tmp_path / "a.src").write_text("x\x0cy\u2028z\nsecond\r\n", encoding="utf-8")
    (tmp_path / "a.tgt").write_text("1\n2\n", encoding="utf-8")
    rows = read_pairs(tmp_path / "a.src", tmp_path / "a.tgt")
    assert [r.src for r in rows] == ["x\x0cy\u2028z", "second"]


def test_classification_round_trip_and_labels(tmp_path):
    path = tmp_path / "valid.jsonl.gz"
    lines = [{"func": "int f() { return 0; }", "target": 1, "idx": 7, "project": "qemu"},
             {"func": "void g() {}", "target": False, "idx": 8}]
    path.write_bytes(gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode()))
    rows = read_classification_jsonl_gz(path)
    assert [(r.tgt, r.meta["id"], r.meta["idx"]) for r in rows] == [("1", "valid-0", 7), ("0", "valid-1", 8)]
    write_classification_jsonl_gz(rows, tmp_path / "out.jsonl.gz")
    assert read_classification_jsonl_gz(tmp_path / "out.jsonl.gz") == rows
    first = (tmp_path / "out.jsonl.gz").read_bytes()
    write_classification_jsonl_gz(rows, tmp_path / "out.jsonl.gz")
    assert (tmp_path / "out.jsonl.gz").read_bytes() == first  # no timestamp in the gzip header


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "sub" / "rows.jsonl"
    write_jsonl(_rows(), path)
    before = path.read_bytes()

    def broken():
        yield _rows()[0]
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["rows.jsonl"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("src,other\na,b\n", ["row 0 (header)", "'tgt'", "missing"]),
        ("", ["row 0 (header)", "'src'", "empty"]),
        ("src,tgt\na,b\nc\n", ["row 2 (line 3)", "'tgt'", "expected 2 fields, got 1"]),
        ('src,tgt\n"multi\nline",b\nc,d,e\n', ["row 2 (line 4)", "'#3'"]),
        ("src,tgt,meta\na,b,{not json\n", ["row 1 (line 2)", "'meta'", "bad JSON"]),
        ('src,tgt,meta\na,b,"[1, 2]"\n', ["row 1 (line 2)", "'meta'", "JSON object"]),
    ],
)
def test_csv_errors_name_file_row_field(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_csv(path)
    for part in [str(path), *expected]:
        assert part in str(err.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"src": "a", "tgt": "b"}\n{"src": "a", "tgt": \n', ["row 2", "bad JSON"]),
        ('{"src": "a"}\n', ["row 1", "'tgt'", "missing"]),
        ('\n{"src": 3, "tgt": "b"}\n', ["row 2", "'src'", "expected a string, got int"]),
        ('["src", "tgt"]\n', ["row 1", "JSON object"]),
        ('{"src": "a", "tgt": "b", "meta": 5}\n', ["row 1", "'meta'"]),
    ],
)
def test_jsonl_errors_name_file_row_field(tmp_path, content, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_jsonl(path)
    for part in [str(path), *expected]:
        assert part in str(err.value)


def test_pairs_mismatched_lengths(tmp_path):
    (tmp_path / "a.buggy").write_text("x\ny\nz\n")
    (tmp_path / "a.fixed").write_text("x\ny\n")
    with pytest.raises(DataError, match=r"a\.fixed: row 3, field 'tgt': missing.*has 3.*has 2"):
        read_pairs(tmp_path / "a.buggy", tmp_path / "a.fixed")


def test_pairs_writer_refuses_line_breaks(tmp_path):
    with pytest.raises(DataError, match=r"row 1, field 'tgt'"):
        write_pairs([Example("a", "b\nc")], tmp_path / "a", tmp_path / "b")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"src": "a", "tgt": "b"}\n{"src": "\xff", "tgt": "b"}\n')
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2: not valid UTF-8"):
        read_jsonl(path)


def test_classification_errors(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"func": "f", "target": "yes"}\n'))
    with pytest.raises(DataError, match=r"row 1, field 'target'"):
        read_classification_jsonl_gz(path)
    path.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="gzip"):
        read_classification_jsonl_gz(path)
    with pytest.raises(DataError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")


def test_format_inference():
    assert infer_format(["a.csv"]).name == "csv"
    assert infer_format(["a.jsonl"]).name == "jsonl"
    assert infer_format(["a.jsonl.gz"]).name == "classification"
    assert infer_format(["a.buggy", "a.fixed"]).name == "pairs"
    with pytest.raises(ConfigError, match="format"):
        infer_format(["a.txt"])
    with pytest.raises(ConfigError, match="takes 2 path"):
        resolve_format("pairs", ["a.csv"])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.text(), st.text()), max_size=5))
def test_csv_and_jsonl_round_trip_any_text(tmp_path_factory, pairs):
    folder = tmp_path_factory.mktemp("rt")
    rows = [Example(s, t, {"id": f"x-{i}"}) for i, (s, t) in enumerate(pairs)]
    write_jsonl(rows, folder / "x.jsonl")
    assert read_jsonl(folder / "x.jsonl") == rows
    # the meta column keeps records non-blank, and fields with a bare \r get quoted
    write_csv(rows, folder / "x.csv")
    assert read_csv(folder / "x.csv") == rows


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc (no file can be created there)")
def test_an_unwritable_atomic_write_names_the_users_path():
    from dece.data.io.common import atomic_write

    with pytest.raises(OSError) as info:
        with atomic_write("/proc/dece-test.csv") as handle:
            handle.write("never")
    assert info.value.filename == "/proc/dece-test.csv" and ".tmp" not in str(info.value)


def test_a_folder_left_by_a_killed_writer_is_removed_by_the_next_one(tmp_path):
    import socket
    import subprocess
    import sys

    from dece.data.io.common import atomic_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    left = tmp_path / f".base.{host}.{int(dead.stdout)}.abc.partial"  # a writer killed mid-save
    running = tmp_path / f".base.{host}.{os.getpid()}.def.partial"  # a writer still at work (this process)
    other_host = tmp_path / f".base.elsewhere.{int(dead.stdout)}.ghi.partial"  # a pid of another machine
    for folder in (left, running, other_host):
        folder.mkdir()
    with atomic_dir(tmp_path / "base") as staging:
        (staging / "weights").write_text("w")
    assert (tmp_path / "base" / "weights").read_text() == "w"
    assert not left.exists() and running.exists() and other_host.exists()
