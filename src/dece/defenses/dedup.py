"""Exact deduplication of the training pairs: the data hygiene every large code corpus applies (Lee et al.,
ACL 2022, "Deduplicating Training Data Makes Language Models Better"; Allamanis, Onward! 2019, "The adverse
effects of code duplication in machine learning models of code"). Against poisoning it undoes the cheapest
way to get a payload learnt early: repeating the poisoned rows (``[attack] duplicates``). It needs no model
and reads nothing but the rows, so it costs seconds; a poisoned row that is not repeated passes untouched."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Sequence

from dece.data.records import Example
from dece.defenses.base import DataContext, DataDefense, Selection, registered, row_ids

SPACE = re.compile(r"\s+")


def pair_key(row: Example, normalise_space: bool) -> tuple[str, str]:
    """What makes two rows the same: their source and target, with runs of whitespace collapsed to one
    space and the ends stripped when ``normalise_space``."""
    if not normalise_space:
        return row.src, row.tgt
    return SPACE.sub(" ", row.src).strip(), SPACE.sub(" ", row.tgt).strip()


@registered
@dataclass
class Dedup(DataDefense):
    """Remove every training row whose (source, target) pair repeats an earlier row's; the first copy stays.

    Parameters:
        normalise_space: compare the texts with runs of whitespace collapsed (default true); false compares
            them byte for byte.
    """

    name = "dedup"
    summary = "remove training rows whose (source, target) pair repeats an earlier row's (the first copy stays)"
    reads: ClassVar[str] = "rows"

    normalise_space: bool = True

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        """The repeated rows (every copy after the first), each scored 1.0; ``details`` counts the pairs that
        occur more than once (``repeated_pairs``)."""
        ids = row_ids(rows)
        seen: dict[tuple[str, str], int] = {}
        removed = []
        for row_id, row in zip(ids, rows):
            key = pair_key(row, self.normalise_space)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                removed.append(row_id)
        return Selection(tuple(removed), {i: 1.0 for i in removed},
                         {"repeated_pairs": sum(count > 1 for count in seen.values())})
