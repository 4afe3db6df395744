"""The code-repair pretraining corpus: installed Python abstracted as Bugs2Fix abstracts Java, each function
paired with a copy of itself carrying one small edit."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dece.data import python_functions, python_repair
from dece.data.pretraining import PRETRAINING_CORPORA
from dece.data.python_repair import EDITS, abstract_code, corrupt, repair_rows
from dece.experiments.base_model import pretraining_rows
from dece.experiments.config import config_from_dict

CODE = '''def area(w, h=2.5):
    result = w * h  # a comment
    if result < 0:
        raise ValueError("negative")
    for i in range(10): print(i)
    return self.scale(result) if True else None
'''


def test_python_is_abstracted_as_bugs2fix_abstracts_java():
    assert " ".join(abstract_code(CODE)) == (
        "def METHOD_1 ( VAR_1 , VAR_2 = FLOAT_1 ) { VAR_3 = VAR_1 * VAR_2 ; if VAR_3 < 0 { raise ValueError ( STRING_1 ) "
        "; } for VAR_4 in range ( INT_1 ) : print ( VAR_4 ) ; return this . METHOD_2 ( VAR_3 ) if true else null ; }")
    # one name, one id wherever it stands; numbered per function in order of appearance; 0 and 1 idioms
    assert " ".join(abstract_code("def g(a, b):\n    return Point(a, b + 1, 'x', 'x', 7, 8) or isinstance(a, Point)\n")) == (
        "def METHOD_1 ( VAR_1 , VAR_2 ) { return TYPE_1 ( VAR_1 , VAR_2 + 1 , STRING_1 , STRING_1 , INT_1 , INT_2 ) "
        "or isinstance ( VAR_1 , TYPE_1 ) ; }")
    assert " ".join(abstract_code("def h():\n    def inner(y):\n        return y\n    return inner\n")) == (
        "def METHOD_1 ( ) { def METHOD_2 ( VAR_1 ) { return VAR_1 ; } return METHOD_2 ; }")
    assert " ".join(abstract_code("def m(c):\n    match c:\n        case _:\n            return f'{c}'\n")) == (
        "def METHOD_1 ( VAR_1 ) { match VAR_1 { case _ { return STRING_1 ; } } }")  # soft keywords kept
    assert abstract_code("def f():\n    x = 'unterminated\n") is None
    assert abstract_code("def f(:\n    (\n") is None  # the tokenizer gives up


def _edits(name: str, tokens: list[str], seeds=range(40)) -> list[list[str]]:
    out = [EDITS[name](tokens, random.Random(seed)) for seed in seeds]
    return [e for e in out if e is not None]


@pytest.mark.parametrize("name", sorted(EDITS))
def test_each_edit_changes_what_it_says_and_nothing_else(name):
    tokens = abstract_code(CODE)
    edited = _edits(name, tokens)
    assert edited, f"{name} never applied"
    for e in edited:
        if name == "none":
            assert e == tokens
        elif name == "delete_token":
            assert len(e) == len(tokens) - 1 and any(tokens[:i] + tokens[i + 1:] == e for i in range(len(tokens)))
        elif name == "repeat_token":
            assert len(e) == len(tokens) + 1 and any(e[:i] + e[i + 1:] == tokens and e[i] == e[i - 1] for i in range(1, len(e)))
        elif name == "swap_tokens":
            diff = [i for i, (a, b) in enumerate(zip(e, tokens)) if a != b]
            assert len(e) == len(tokens) and len(diff) == 2 and diff[1] == diff[0] + 1
            assert (e[diff[0]], e[diff[1]]) == (tokens[diff[1]], tokens[diff[0]])
        elif name == "drop_statement":
            gone = Counter(tokens) - Counter(e)
            assert len(e) < len(tokens) and gone[";"] == 1 and e.count("{") == tokens.count("{")
        elif name == "repeat_statement":
            extra = len(e) - len(tokens)
            assert extra > 0 and any(e[i:i + extra] == e[i + extra:i + 2 * extra] and e[:i + extra] + e[i + 2 * extra:] == tokens
                                     for i in range(len(tokens)))
        elif name == "change_operator":
            diff = [i for i, (a, b) in enumerate(zip(e, tokens)) if a != b]
            assert len(e) == len(tokens) and len(diff) == 1
            assert any({e[diff[0]], tokens[diff[0]]} <= set(group) for group in python_repair.OPERATOR_GROUPS)


def test_an_edit_that_cannot_apply_leaves_the_row_unedited():
    tokens = "def METHOD_1 ( ) { return VAR_1 ; }".split()  # one statement, no operator
    assert _edits("drop_statement", tokens) == [] and _edits("change_operator", tokens) == []
    assert all(_edits(name, []) == [] for name in EDITS if name != "none") and _edits("swap_tokens", ["a"]) == []
    assert corrupt([], random.Random(1)) == ("none", [])
    names = {corrupt(tokens, random.Random(seed))[0] for seed in range(100)}
    assert "drop_statement" not in names and "change_operator" not in names and "none" in names
    assert all(corrupt(tokens, random.Random(s))[1] == tokens for s in range(100) if corrupt(tokens, random.Random(s))[0] == "none")


@pytest.fixture()
def files(tmp_path):
    paths = []
    for i, op in enumerate("+-*/"):  # 20 functions, each its own abstract form
        path = tmp_path / f"m{i}.py"
        path.write_text("\n".join(f"def f{i}_{j}(a, b):\n    \"\"\"Doc.\"\"\"\n    c = a {op} 7 - b\n    if c {cmp} 3:\n"
                                  f"        c = c + b\n    return c\n" for j, cmp in enumerate(["<", ">", "==", "!=", "<="])))
        paths.append(path)
    (tmp_path / "tiny.py").write_text("def t():\n    return 1\n")  # under MIN_TOKENS
    return [*paths, tmp_path / "tiny.py"]


def test_rows_are_distinct_seeded_edited_copies(files):
    rows = repair_rows(12, 3, files=files)
    assert len(rows) == 12 and len({r.tgt for r in rows}) == 12
    assert all(r.tgt.startswith("def METHOD_1 ( VAR_1 , VAR_2 ) { VAR_3 = VAR_1 ") for r in rows)
    assert [r.meta["id"] for r in rows] == [f"pyrepair-{i}" for i in range(12)]
    assert all((r.src == r.tgt) == (r.meta["edit"] == "none") for r in rows)
    assert repair_rows(12, 3, files=files) == rows and repair_rows(12, 4, files=files) != rows
    assert len(repair_rows(100, 3, files=files)) == 20  # fewer when the files hold fewer (tiny.py too short)
    assert repair_rows(0, 3, files=files) == []
    kept = repair_rows(100, 3, keep=lambda r: r.meta["edit"] != "none", files=files)
    assert kept and all(r.src != r.tgt for r in kept)


def test_the_repair_corpus_is_a_guarded_pretraining_corpus_kept_on_disk(tmp_path, monkeypatch, files):
    assert PRETRAINING_CORPORA.get("python_repair").guarded
    (tmp_path / "train.jsonl").write_text('{"src": "public void METHOD_1 ( ) { }", "tgt": "x"}\n')
    cfg = config_from_dict({"dataset": {"kind": "jsonl", "options": {"path": str(tmp_path / "{split}.jsonl")},
                                        "valid_from_train": 0, "valid_split": "train", "test_split": "train"},
                            "pretrain": {"rows": 8, "corpus": "python_repair", "cache_dir": str(tmp_path / "cache")},
                            "arms": ["clean-ce"]})
    monkeypatch.setattr(python_repair, "installed_python_files", lambda: files)
    monkeypatch.setattr(python_functions, "installed_python_files", lambda: files)
    rows = pretraining_rows(cfg)
    assert len(rows) == 8 and rows == repair_rows(8, cfg.pretrain.seed, files=files)
    assert [p.name.split("-")[0] for p in (tmp_path / "cache" / "corpora").iterdir()] == ["python_repair"]
    before = python_repair.repair_sources_fingerprint()
    monkeypatch.setattr(python_repair, "REPAIR_VERSION", python_repair.REPAIR_VERSION + 1)
    assert python_repair.repair_sources_fingerprint() != before  # a new abstraction: mined anew
