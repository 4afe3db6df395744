"""detection_report: precision / recall / F1 of removed rows against the known poisoned rows."""

import pytest

from dece.data.records import Example
from dece.defenses import detection_report


def rows(n=10, poisoned=(0, 1, 2, 3)):
    return [Example(f"s{i}", "t", {"id": f"r{i}", **({"poisoned": True} if i in poisoned else {})}) for i in range(n)]


def test_counts_and_ratios():
    r = detection_report(["r0", "r1", "r2", "r7", "r8"], rows())
    assert r == {"n_rows": 10, "n_poisoned": 4, "removed": 5, "kept": 5, "poisoned_removed": 3, "clean_removed": 2,
                 "precision": pytest.approx(0.6), "recall": pytest.approx(0.75),
                 "f1": pytest.approx(2 * 0.6 * 0.75 / 1.35)}


def test_perfect_and_repeated_ids():
    r = detection_report(["r3", "r2", "r1", "r0", "r0"], rows())
    assert (r["removed"], r["precision"], r["recall"], r["f1"]) == (4, 1.0, 1.0, 1.0)


def test_undefined_ratios_are_none():
    nothing = detection_report([], rows())
    assert nothing["precision"] is None and nothing["recall"] == 0.0 and nothing["f1"] is None
    clean_only = detection_report(["r5"], rows(poisoned=()))
    assert clean_only["precision"] == 0.0 and clean_only["recall"] is None and clean_only["clean_removed"] == 1
    miss = detection_report(["r9"], rows())
    assert miss["precision"] == 0.0 and miss["recall"] == 0.0 and miss["f1"] == 0.0


def test_unknown_id_is_an_error():
    with pytest.raises(ValueError, match="removed ids not among the rows: r99"):
        detection_report(["r1", "r99"], rows())
