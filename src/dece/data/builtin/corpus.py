"""Rows of the built-in corpus, and how they are dealt into splits.

One seeded stream of rows per seed. Each row is assigned for good to a *bucket* by a SHA-256 hash of
its description: 40% train, 10% valid, 10% test, 40% pretrain. A split takes the first ``n`` distinct
rows of its own bucket, so the splits never share a description, whatever their sizes and seeds,
and the pretraining corpus never shares one with any split. The code of a row is a function of its
description (its undescribed names are drawn from a generator seeded by the description), so equal
descriptions always carry equal code. Nothing depends on Python's ``hash()``: rows are the same in
every process."""

from __future__ import annotations

import hashlib
import random
from typing import Iterator

from dece.data.builtin.code import render_code
from dece.data.builtin.describe import describe
from dece.data.builtin.spec import sample_spec
from dece.data.records import Example
from dece.errors import ConfigError

# bucket index (SHA-256 of the description, mod 20) -> split
BUCKETS: tuple[str, ...] = ("train",) * 8 + ("valid",) * 2 + ("test",) * 2 + ("pretrain",) * 8
SPLITS: tuple[str, ...] = ("train", "valid", "test")
TASK_SPLITS: frozenset[str] = frozenset(SPLITS)


def make_row(rng: random.Random) -> tuple[str, str]:
    """One (description, code) pair."""
    spec = sample_spec(rng)
    src = describe(spec, rng)
    return src, render_code(spec, random.Random(f"dece-code:{src}"))


def bucket_of(src: str) -> str:
    """The split a description belongs to, for every seed."""
    digest = hashlib.sha256(src.encode("utf-8")).digest()
    return BUCKETS[int.from_bytes(digest[:8], "big") % len(BUCKETS)]


def _stream(seed: int) -> Iterator[tuple[str, str, str]]:
    """(src, tgt, bucket) of the seed's rows, endless, repeats included."""
    rng = random.Random(f"dece-sql:{seed}")
    while True:
        src, tgt = make_row(rng)
        yield src, tgt, bucket_of(src)


def _collect(seed: int, wanted: dict[str, int], accepts: dict[str, frozenset[str]]) -> dict[str, list[Example]]:
    """For each name in ``wanted``, its first ``wanted[name]`` distinct rows from the buckets it accepts,
    with ids ``f"{name}-{i}"``."""
    for name, n in wanted.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ConfigError(f"n_{name}: expected a non-negative integer, got {n!r}")
    out: dict[str, list[Example]] = {name: [] for name in wanted}
    seen: set[str] = set()
    budget = 50 * sum(wanted.values()) + 1000
    for draws, (src, tgt, bucket) in enumerate(_stream(seed)):
        open_names = [name for name in wanted if len(out[name]) < wanted[name]]
        if not open_names:
            return out
        if draws >= budget:
            raise ConfigError(f"builtin: could not draw {wanted} distinct rows for seed {seed}")
        if src in seen:
            continue
        for name in open_names:
            if bucket in accepts[name]:
                seen.add(src)
                out[name].append(Example(src, tgt, {"id": f"{name}-{len(out[name])}"}))
                break
    raise AssertionError("unreachable: the stream is endless")


def generate_sql_corpus(n: int, seed: int) -> list[Example]:
    """``n`` distinct Lyra-style rows (English description -> Python function with embedded SQL) drawn
    from the train, valid and test buckets (never from the pretraining bucket). ``meta["id"]`` is
    ``"builtin-i"``. A longer corpus for the same seed starts with the shorter one."""
    return _collect(seed, {"builtin": n}, {"builtin": TASK_SPLITS})["builtin"]


def builtin_splits(n_train: int, n_valid: int, n_test: int, seed: int) -> dict[str, list[Example]]:
    """Disjoint train/valid/test splits (no description in two splits). Each split depends only on its
    own size and the seed, so ``builtin_splits(..., n_test=200, seed)["test"]`` is the same for any
    ``n_train``. Ids are ``"train-i"``, ``"valid-i"``, ``"test-i"``."""
    wanted = {"train": n_train, "valid": n_valid, "test": n_test}
    return _collect(seed, wanted, {name: frozenset({name}) for name in wanted})


def builtin_split(split: str, n: int, seed: int) -> list[Example]:
    """One split of :func:`builtin_splits` (``"train"``, ``"valid"``, ``"test"``) or ``"pretrain"``."""
    if split not in (*SPLITS, "pretrain"):
        raise ConfigError(f"split: unknown built-in split {split!r}; valid: train, valid, test, pretrain")
    return _collect(seed, {split: n}, {split: frozenset({split})})[split]


def pretraining_corpus(n: int, seed: int) -> list[Example]:
    """``n`` distinct rows for pretraining, from a bucket that no train/valid/test split of any seed
    (nor :func:`generate_sql_corpus`) ever draws from. Ids are ``"pretrain-i"``."""
    return builtin_split("pretrain", n, seed)
