"""How well a data-removing defense found the poisoned rows, and what it cost in clean rows."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from dece.data.records import Example


def detection_report(removed_ids: Iterable[str], rows: Sequence[Example]) -> dict[str, Any]:
    """Compare the removed rows with the known poisoned rows (``meta["poisoned"]``).

    Returns ``n_rows``, ``n_poisoned`` (poisoned rows in ``rows``), ``removed``, ``kept``,
    ``poisoned_removed`` (true positives), ``clean_removed`` (false positives: the clean rows the
    defense cost), ``precision = poisoned_removed / removed``, ``recall = poisoned_removed /
    n_poisoned`` and their harmonic mean ``f1``. A ratio whose denominator is 0 (nothing removed, or
    no poisoned row) is ``None``; ``f1`` is ``None`` when either is, and 0 when both are 0.
    ``removed_ids`` are ``meta["id"]`` values (repeats count once); an id not among ``rows`` is an error.
    """
    by_id = {str(r.meta.get("id")): r for r in rows}
    removed = {str(i) for i in removed_ids}
    unknown = sorted(removed - set(by_id))
    if unknown:
        raise ValueError(f"removed ids not among the rows: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
    n_poisoned = sum(bool(r.meta.get("poisoned")) for r in rows)
    hits = sum(bool(by_id[i].meta.get("poisoned")) for i in removed)
    precision = hits / len(removed) if removed else None
    recall = hits / n_poisoned if n_poisoned else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "n_rows": len(rows),
        "n_poisoned": n_poisoned,
        "removed": len(removed),
        "kept": len(rows) - len(removed),
        "poisoned_removed": hits,
        "clean_removed": len(removed) - hits,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
