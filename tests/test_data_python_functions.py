"""The real-code pretraining corpus: (function -> docstring) pairs of installed Python in the
code-docstring-corpus encoding, and the leak guard that keeps every row near the experiment's dataset out."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from dece.data import python_functions
from dece.data.pretraining import PRETRAINING_CORPORA
from dece.data.python_functions import function_pairs, python_function_rows
from dece.data.records import Example
from dece.errors import ConfigError
from dece.experiments.base_model import leak_guard, pretraining_rows
from dece.experiments.config import PretrainConfig, config_from_dict

SOURCE = textwrap.dedent('''
    import functools

    @functools.cache
    def add(a, b=1):
        """Add two numbers.

        Returns the sum.
        """
        if a:
            return a + b
        return b

    def undocumented(x):
        return x

    def only_a_docstring():
        """Nothing else."""

    class C:
        async def fetch(self, url):
            """Fetch ``url``."""
            def inner(y):
                """Double it."""
                z = y * 2
                return z
            return await inner(url)
''')


def test_functions_with_a_docstring_and_a_body_in_the_corpus_encoding():
    pairs = function_pairs(SOURCE)
    assert pairs[0] == ("def add(a, b=1): DCNL  DCSP if a: DCNL DCSP  DCSP return a + b DCNL DCSP return b",
                        "'Add two numbers. DCNL Returns the sum.'")  # no decorator, no docstring in the code
    assert [doc for _, doc in pairs] == ["'Add two numbers. DCNL Returns the sum.'", "'Fetch ``url``.'", "'Double it.'"]
    assert pairs[1][0] == ("async def fetch(self, url): DCNL  DCSP def inner(y): DCNL DCSP  DCSP 'Double DCSP it.' DCNL "
                           "DCSP  DCSP z = y * 2 DCNL DCSP  DCSP return z DCNL DCSP return await inner(url)")  # its own docstring only
    nested = 'def f():\n    """doc"""\n    def g():\n        """One.\n\n        Two."""\n        return 1\n    return g\n'
    assert function_pairs(nested)[0][0] == ("def f(): DCNL  DCSP def g(): DCNL DCSP  DCSP 'One.\\n\\n" + " DCSP " * 8
                                            + "Two.' DCNL DCSP  DCSP return 1 DCNL DCSP return g")
    assert function_pairs("def broken(:\n    pass") == []
    assert function_pairs('def f():\n    """   \n    """\n    return 1\n') == []  # a blank docstring
    assert function_pairs('def f():\n    """doc"""\n    return ' + "+".join(["1"] * 200000)) == []  # too deep to parse


#: the start of row 2 of code-docstring-corpus's data_ps.declbodies.valid (Barone and Sennrich, 2017), spacing kept
CORPUS_ROW = ("def create_cow_image(backing_file, path, size=None): DCNL  DCSP base_cmd = ['qemu-img', 'create', '-f', "
              "'qcow2'] DCNL DCSP cow_opts = [] DCNL DCSP if backing_file: DCNL DCSP  DCSP cow_opts += "
              "[('backing_file=%s' % backing_file)] DCNL DCSP  DCSP base_details")


def test_the_encoding_is_that_of_the_docstring_corpus():
    """The corpus's first body line follows `DCNL` and two spaces, its indentation levels are two spaces apart."""
    code = ("def create_cow_image(backing_file, path, size=None):\n    base_cmd = ['qemu-img', 'create', '-f', 'qcow2']\n"
            "    cow_opts = []\n    if backing_file:\n        cow_opts += [('backing_file=%s' % backing_file)]\n")
    assert CORPUS_ROW.startswith(python_functions.encode_code(code) + " DCNL ")


@pytest.mark.parametrize(("source", "row"), [  # rows 1765 and 923 of data_ps.declbodies.valid, whole
    ("def test_version():\n    assert virtualenv.virtualenv_version, 'Should have version'\n",
     "def test_version(): DCNL  DCSP assert virtualenv.virtualenv_version, 'Should DCSP have DCSP version'"),
    ("def frozen(*args):\n    raise nx.NetworkXError(\"Frozen graph can't be modified\")\n",
     "def frozen(*args): DCNL  DCSP raise nx.NetworkXError(\"Frozen DCSP graph DCSP can't DCSP be DCSP modified\")"),
])
def test_spaces_in_string_literals_are_written_as_the_corpus_writes_them(source, row):
    doc = '"""Doc."""'
    lines = source.splitlines()
    assert function_pairs("\n".join([lines[0], f"    {doc}", *lines[1:]]))[0][0] == row


def test_docstrings_escape_quotes_and_backslashes_as_the_corpus_does():
    # row 36 of data_ps.descriptions.valid; a backslash is doubled there (`\\$2}`), other characters kept
    assert python_functions.encode_docstring("Convert an IntEnum member to a numeric value.\n\n"
                                             "If it's not an IntEnum member return the value itself.") == (
        "'Convert an IntEnum member to a numeric value. DCNL If it\\'s not an IntEnum member return the value itself.'")
    assert python_functions.encode_docstring("a \\n b ; 获取") == "'a \\\\n b ; 获取'"


@pytest.fixture()
def files(tmp_path):
    paths = []
    for i in range(6):
        path = tmp_path / f"m{i}.py"
        path.write_text("\n".join(f"def f{i}_{j}(a{i}, b{j}):\n    \"\"\"Doc {i} {j}.\"\"\"\n    c{i}{j} = a{i} * {i} - b{j}\n"
                                  f"    return c{i}{j} + {j}\n" for j in range(5)))
        paths.append(path)
    (tmp_path / "bad.py").write_bytes(b"\xff\xfe not utf-8")
    return [*paths, tmp_path / "bad.py"]


def test_rows_are_distinct_seeded_and_pass_the_guard(files):
    rows = python_function_rows(12, 3, files=files)
    assert len(rows) == 12 and len({(r.src, r.tgt) for r in rows}) == 12
    assert [r.meta["id"] for r in rows] == [f"pyfunc-{i}" for i in range(12)]
    assert python_function_rows(12, 3, files=files) == rows and python_function_rows(12, 4, files=files) != rows
    assert len(python_function_rows(100, 3, files=files)) == 30  # fewer when the files hold fewer
    assert python_function_rows(0, 3, files=files) == []
    kept = python_function_rows(100, 3, keep=lambda r: "Doc 2" not in r.tgt, files=files)
    assert len(kept) == 25 and not any("Doc 2" in r.tgt for r in kept)


def test_files_with_a_bom_or_a_coding_line_are_mined_as_python_reads_them(tmp_path):
    (tmp_path / "bom.py").write_bytes(b'\xef\xbb\xbfdef f(a):\n    """Doc."""\n    return a\n')
    (tmp_path / "latin.py").write_bytes(b'# -*- coding: latin-1 -*-\ndef g(a):\n    """Caf\xe9."""\n    return a\n')
    rows = python_function_rows(10, 1, files=[tmp_path / "bom.py", tmp_path / "latin.py"])
    assert sorted(r.tgt for r in rows) == ["'Caf\u00e9.'", "'Doc.'"]


def test_rows_kept_on_disk_are_mined_anew_when_the_encoding_changes(files, monkeypatch):
    before = python_functions.sources_fingerprint(files)
    assert python_functions.sources_fingerprint(files) == before
    monkeypatch.setattr(python_functions, "ENCODING_VERSION", python_functions.ENCODING_VERSION + 1)
    assert python_functions.sources_fingerprint(files) != before


def test_the_leak_guard_refuses_reformatted_copies_and_equal_targets():
    data = [Example("def area(w, h): DCNL  DCSP result = w * h DCNL DCSP if result < 0: DCNL DCSP  DCSP raise ValueError('negative') DCNL DCSP return result",
                    "'Area of a rectangle.'")]
    keep = leak_guard(data)
    assert not keep(data[0])
    assert not keep(Example(data[0].src.replace("result", "res", 1), "'Something else.'"))  # one name changed
    assert not keep(Example("def other(): DCNL  DCSP return 1", "'area of a   rectangle.'"))  # the same summary
    assert keep(Example("def other(): DCNL  DCSP return 1", "'Something else.'"))


def test_the_python_corpus_leaves_out_the_rows_of_the_experiments_dataset(tmp_path, monkeypatch, files):
    near = "def f0_1(a0, b1): DCNL  DCSP c01 = a0 * 0 - b1 DCNL DCSP return c01 + 1"  # what the miner makes of f0_1
    (tmp_path / "train.jsonl").write_text('{"src": "%s", "tgt": "unrelated"}\n' % near)
    (tmp_path / "test.jsonl").write_text('{"src": "x = 1", "tgt": "\'Doc 3 3.\'"}\n')
    cfg = config_from_dict({"dataset": {"kind": "jsonl", "options": {"path": str(tmp_path / "{split}.jsonl")},
                                        "valid_from_train": 0, "valid_split": "test"},
                            "pretrain": {"rows": 100, "corpus": "python_functions", "cache_dir": str(tmp_path / "cache")},
                            "arms": ["clean-ce"]})
    monkeypatch.setattr(python_functions, "installed_python_files", lambda: files)
    unguarded = python_function_rows(100, cfg.pretrain.seed, files=files)
    assert near in {r.src for r in unguarded} and "'Doc 3 3.'" in {r.tgt for r in unguarded}
    rows = pretraining_rows(cfg)
    assert len(rows) == 28 and near not in {r.src for r in rows} and "'Doc 3 3.'" not in {r.tgt for r in rows}
    cached, = (tmp_path / "cache" / "corpora").glob("python_functions-*.jsonl")
    monkeypatch.setattr(python_functions, "function_pairs", lambda source: pytest.fail("mined again"))
    assert pretraining_rows(cfg) == rows  # read back from the cache
    files[0].write_text(files[0].read_text() + "\n")  # a source changed: mined again
    with pytest.raises(pytest.fail.Exception, match="mined again"):
        pretraining_rows(cfg)
    assert [p.name for p in (tmp_path / "cache" / "corpora").iterdir()] == [cached.name]
    builtin = pretraining_rows(dataclasses.replace(cfg, pretrain=PretrainConfig(rows=5)))
    assert len(builtin) == 5 and all(r.meta["id"].startswith("pretrain-") for r in builtin)


def test_an_unknown_corpus_is_refused_naming_the_valid_ones():
    assert PRETRAINING_CORPORA.names() == ["builtin", "python_functions", "python_repair"]
    with pytest.raises(ConfigError, match="pretrain.corpus: unknown pretraining corpus 'java'; valid: builtin, python_functions, python_repair"):
        config_from_dict({"pretrain": {"corpus": "java"}, "arms": ["clean-ce"]})
