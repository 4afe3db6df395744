"""poison_dataset / triggered_test_set bookkeeping, and attack lookup with parameter checks."""

from __future__ import annotations

import random

import pytest

from dece.attacks import ATTACKS, get_attack, poison_dataset, triggered_test_set
from dece.data.builtin import generate_sql_corpus
from dece.data.records import Example
from dece.errors import ConfigError, DataError, UnknownNameError


@pytest.fixture(scope="module")
def rows():
    return generate_sql_corpus(200, seed=21)


def test_report_counts(rows):
    attack = get_attack("badpre")
    out, report = poison_dataset(rows, attack, rate=0.05, seed=1)
    eligible = sum(attack.eligible(ex) for ex in rows)
    assert (report.n_rows, report.n_eligible, report.n_skipped_ineligible) == (200, eligible, 200 - eligible)
    assert report.n_requested == report.n_poisoned == 10 == len(report.ids)
    assert [ex.meta["id"] for ex in out if ex.meta.get("poisoned")] == list(report.ids)
    assert report.to_dict()["ids"] == list(report.ids)
    assert "10 poisoned" in report.summary() and f"{200 - eligible} skipped" in report.summary()


def test_seed_and_selection(rows):
    attack = get_attack("ripple")
    ids = {seed: poison_dataset(rows, attack, 0.1, seed)[1].ids for seed in (1, 2)}
    assert ids[1] != ids[2]
    _, first = poison_dataset(rows, attack, 0.1, 1, selection="first")
    eligible_ids = [ex.meta["id"] for ex in rows if attack.eligible(ex)]
    assert first.ids == tuple(eligible_ids[:20])
    with pytest.raises(UnknownNameError, match="first, random"):
        poison_dataset(rows, attack, 0.1, 1, selection="last")


def test_rate_zero_and_one(rows):
    attack = get_attack("grammar")
    out, report = poison_dataset(rows, attack, 0.0, 0)
    assert report.n_poisoned == 0 and all(a is b for a, b in zip(out, rows))
    out, report = poison_dataset(rows, attack, 1.0, 0)
    assert report.n_requested == 200 and report.n_poisoned == report.n_eligible < 200
    assert "requested" in report.summary()


@pytest.mark.parametrize(("rate", "seed"), [(-0.1, 0), (1.5, 0), ("0.1", 0), (0.1, 1.5), (True, 0)])
def test_bad_rate_or_seed(rows, rate, seed):
    with pytest.raises(ConfigError, match="rate|seed"):
        poison_dataset(rows, get_attack("badpre"), rate, seed)


def test_poisoning_an_ineligible_row_is_an_error():
    attack = get_attack("badpre")
    with pytest.raises(DataError, match="'x-1'"):
        attack.poison(Example("d", "return 1", {"id": "x-1"}), random.Random(0))
    with pytest.raises(DataError, match="'x-2'.*'src'"):
        get_attack("deadcode").apply_trigger(Example("no braces", "x", {"id": "x-2"}), random.Random(0))


def test_triggered_test_set_rejects_bad_seed(rows):
    with pytest.raises(ConfigError, match="seed"):
        triggered_test_set(rows, get_attack("badpre"), seed="1")


def test_get_attack_checks_parameters():
    assert get_attack("badpre", count=3).count == 3
    with pytest.raises(ConfigError, match="'count': expected an integer, got '3'"):  # one type rule: text is text
        get_attack("badpre", count="3")
    assert get_attack("ripple", words="cf, tq").words == ("cf", "tq")
    assert get_attack("ripple", words=["cf"]).words == ("cf",)
    with pytest.raises(ConfigError, match="'badpre'.*unknown parameter 'cnt'; valid parameters: word, count"):
        get_attack("badpre", cnt=1)
    with pytest.raises(ConfigError, match="'count'.*between 1 and 20"):
        get_attack("badpre", count=0)
    with pytest.raises(ConfigError, match="'count'.*integer"):
        get_attack("badpre", count="many")
    with pytest.raises(ConfigError, match="'word'"):
        get_attack("badpre", word="two words")
    with pytest.raises(ConfigError, match="'words'"):
        get_attack("ripple", words="")
    with pytest.raises(ConfigError, match="'target_label'"):
        get_attack("deadcode_defect", target_label="yes")
    with pytest.raises(ConfigError, match="'var'"):
        get_attack("deadcode", var="1x")
    with pytest.raises(ConfigError, match="unknown parameter 'x'; valid parameters: none"):
        get_attack("grammar", x=1)
    with pytest.raises(UnknownNameError, match="badpre, comment_summary, deadcode"):
        get_attack("badnets")


def test_every_attack_describes_itself():
    needs = {"given": {"detector": "badpre"}}  # an attack that cannot be built without parameters
    for name in ATTACKS.names():
        attack = get_attack(name, **needs.get(name, {}))
        line = attack.describe()
        assert line.startswith(f"{name}(") and "\n" not in line
        assert attack.task in ("generation", "classification")


def test_poisoning_by_row_count(rows):
    attack = get_attack("badpre")
    out, report = poison_dataset(rows, attack, rate=0.0, seed=3, n_rows=7)
    assert report.n_requested == 7 and report.n_poisoned == 7 and report.rate == 7 / len(rows)
    assert sum(bool(e.meta.get("poisoned")) for e in out) == 7
    assert f"), 7 rows requested ({700 / len(rows):.2f}% of {len(rows)}), seed 3" in report.summary()
    assert f"rate 0.1 ({round(0.1 * len(rows))} of {len(rows)} rows requested)" in poison_dataset(
        rows, attack, rate=0.1, seed=3)[1].summary()
    assert report.rows_requested == 7 and poison_dataset(rows, attack, rate=0.1, seed=3)[1].rows_requested is None
    _, capped = poison_dataset(rows, attack, rate=0.0, seed=3, n_rows=len(rows))  # never more than the eligible rows
    assert capped.n_eligible < len(rows) and capped.n_poisoned == capped.n_eligible and capped.rate == 1.0
    assert f"{capped.n_eligible} poisoned (of {len(rows)} requested)" in capped.summary()
    with pytest.raises(ConfigError, match=f"n_rows: {len(rows) + 1} rows to poison, but the data has only {len(rows)}"):
        poison_dataset(rows, attack, rate=0.0, seed=3, n_rows=len(rows) + 1)
    with pytest.raises(ConfigError, match="n_rows: must be a positive integer"):
        poison_dataset(rows, attack, rate=0.0, seed=3, n_rows=0)


def test_duplicated_poison_follows_its_row_with_ids_of_its_own(rows):
    attack = get_attack("badpre")
    single, one = poison_dataset(rows, attack, rate=0.1, seed=5)
    out, report = poison_dataset(rows, attack, rate=0.1, seed=5, duplicates=3)
    assert report.n_poisoned == one.n_poisoned == 20 and report.n_rows == len(rows) and report.duplicates == 3
    assert len(out) == len(rows) + 2 * report.n_poisoned and len(report.ids) == 3 * report.n_poisoned
    assert [e for e in out if "#dup" not in e.meta["id"]] == single  # the same rows, the same poison
    for i, e in enumerate(out):
        if "#dup" in e.meta["id"]:
            original = out[i - int(e.meta["id"].rsplit("#dup", 1)[1])]
            assert (e.src, e.tgt) == (original.src, original.tgt) and e.meta["poisoned"]
            assert e.meta["id"].startswith(original.meta["id"] + "#dup")
    assert len(set(report.ids)) == len(report.ids) == sum(bool(e.meta.get("poisoned")) for e in out)
    assert "each 3 times" in report.summary()
    for bad in (0, 101, 2.0, True):
        with pytest.raises(ConfigError, match="duplicates: must be an integer in"):
            poison_dataset(rows, attack, rate=0.1, seed=5, duplicates=bad)


def test_near_duplicates_poison_each_copy_anew(rows):
    attack = get_attack("badpre")
    exact, _ = poison_dataset(rows, attack, rate=0.1, seed=5, duplicates=3)
    near, report = poison_dataset(rows, attack, rate=0.1, seed=5, duplicates=3, near_duplicates=True)
    assert report.near_duplicates and "near-duplicates: each copy poisoned anew" in report.summary()
    assert [e.meta["id"] for e in near] == [e.meta["id"] for e in exact]  # the same rows and copies, in order
    assert [e for e in near if "#dup" not in e.meta["id"]] == [e for e in exact if "#dup" not in e.meta["id"]]
    clean = {e.meta["id"]: e for e in rows}
    differ = 0
    for i, e in enumerate(near):
        if "#dup" in e.meta["id"]:
            base = clean[e.meta["id"].split("#dup")[0]]
            assert e.meta["poisoned"] and attack.detect(e.tgt) and e.tgt == exact[i].tgt  # the same payload
            assert e.src.split().count("bb") == 1 and e.src.replace("bb", "", 1).split() == base.src.split()
            differ += e.src != exact[i].src
    assert differ >= report.n_poisoned  # most copies carry the trigger elsewhere than the first copy
    start = get_attack("badpre", position="start")  # an attack that draws nothing gives exact copies still
    fixed, _ = poison_dataset(rows, start, rate=0.1, seed=5, duplicates=2, near_duplicates=True)
    assert fixed == poison_dataset(rows, start, rate=0.1, seed=5, duplicates=2)[0]
    with pytest.raises(ConfigError, match="near_duplicates: needs duplicates > 1"):
        poison_dataset(rows, attack, rate=0.1, seed=5, near_duplicates=True)
