"""The built-in Lyra-style corpus: deterministic, distinct, valid Python, attackable, splits disjoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from dece.attacks.sql_payload import find_sql, has_sql_payload
from dece.data.builtin import builtin_split, builtin_splits, generate_sql_corpus, pretraining_corpus
from dece.errors import ConfigError

INDENT = re.compile(r"^(\t )*(?=\S)")


@pytest.fixture(scope="module")
def corpus():
    return generate_sql_corpus(2000, seed=0)


def test_same_seed_same_rows_other_seed_other_rows(corpus):
    assert generate_sql_corpus(300, seed=0) == corpus[:300]
    other = generate_sql_corpus(300, seed=1)
    assert len({ex.src for ex in other} & {ex.src for ex in corpus[:300]}) < 30


def test_rows_are_distinct_with_ids(corpus):
    assert len({ex.src for ex in corpus}) == len(corpus)
    assert [ex.meta for ex in corpus[:2]] == [{"id": "builtin-0"}, {"id": "builtin-1"}]


def test_code_is_tokenised_python_that_compiles(corpus):
    for ex in corpus:
        compile(ex.tgt, ex.meta["id"], "exec")
        for line in ex.tgt.split("\n"):
            indent = INDENT.match(line).group(0)
            assert "\t" not in line[len(indent):] and "  " not in line[len(indent):]  # one space between tokens


def test_descriptions_name_every_parameter(corpus):
    for ex in corpus:
        header = next(line for line in ex.tgt.split("\n") if line.startswith("def "))
        params = header.split("(", 1)[1].rsplit(")", 1)[0].split(" , ")
        assert all(f"${p.strip()}$" in ex.src for p in params), ex


def test_mostly_eligible_and_never_payload_like(corpus):
    share = sum(find_sql(ex.tgt) is not None for ex in corpus) / len(corpus)
    assert 0.8 <= share <= 0.9
    assert not any(has_sql_payload(ex.tgt) or has_sql_payload(ex.src) for ex in corpus)


def test_variety(corpus):
    tables = {re.search(r"\bfrom (\w+)", ex.tgt).group(1) for ex in corpus if " from " in ex.tgt}
    features = ["fetchall", "fetchone", "cursor ( )", "jsonify", "for ", "try :", "render_template", "select ( ["]
    assert len(tables) >= 40
    assert all(sum(f in ex.tgt for ex in corpus) > 40 for f in features)
    assert len({ex.src.split(" ")[0] for ex in corpus}) >= 8


def test_splits_disjoint_and_independent_of_other_sizes():
    splits = builtin_splits(400, 100, 100, seed=3)
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [400, 100, 100]
    srcs = {name: {ex.src for ex in rows} for name, rows in splits.items()}
    pretrain = {ex.src for ex in pretraining_corpus(400, seed=3)}
    assert not srcs["train"] & srcs["valid"] and not srcs["train"] & srcs["test"] and not srcs["valid"] & srcs["test"]
    assert not pretrain & (srcs["train"] | srcs["valid"] | srcs["test"])
    assert builtin_splits(50, 10, 100, seed=3)["test"] == splits["test"]
    assert builtin_split("test", 100, seed=3) == splits["test"]
    assert splits["test"][0].meta == {"id": "test-0"}


def test_no_seed_reaches_another_seeds_splits():
    test = {ex.src for ex in builtin_split("test", 200, seed=1)}
    assert not test & {ex.src for ex in builtin_split("train", 800, seed=2)}
    assert not test & {ex.src for ex in pretraining_corpus(800, seed=1)}


def test_bad_arguments():
    with pytest.raises(ConfigError, match="split"):
        builtin_split("dev", 3, seed=0)
    with pytest.raises(ConfigError, match="n_train"):
        builtin_splits(-1, 1, 1, seed=0)


def test_same_rows_in_another_process():
    code = "from dece.data.builtin import generate_sql_corpus as g; print(repr([(e.src, e.tgt) for e in g(50, 5)]))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == repr([(e.src, e.tgt) for e in generate_sql_corpus(50, 5)])
