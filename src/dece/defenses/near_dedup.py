"""Near-duplicate removal of the training pairs: the fuzzy deduplication that large code corpora apply
after the exact one (MinHash over word shingles with locality-sensitive hashing, as in Lee et al., ACL 2022,
and the BigCode/The Stack pipeline; Broder, 1997, for MinHash). Against poisoning it answers the attacker who
knows `dedup`: copies of a poisoned row that differ a little (the trigger at another position) pass an exact
deduplication but not this one. The price is measured, not assumed: templated clean rows can be near
duplicates too, and are removed with the poison (``details`` counts what was removed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from dece.data.records import Example
from dece.defenses.base import DataContext, DataDefense, Selection, registered, row_ids

#: the highest similarity the LSH proposes candidates at (above it, datasketch cannot band the sketch)
LSH_MAX_THRESHOLD = 0.9


def shingles(row: Example, size: int) -> set[str]:
    """The row's word ``size``-grams, over its source then its target (whitespace-split; a row with fewer
    words gives one shingle of all of them). The boundary between the two is a word of its own (``"\\x00"``),
    so a shingle across it never equals one inside a source or a target."""
    words = row.src.split() + ["\x00"] + row.tgt.split()
    if len(words) <= size:
        return {" ".join(words)}
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def minhash(grams: set[str], num_perm: int = 128, seed: int = 1):
    """The MinHash sketch (``datasketch.MinHash``) of a set of shingles."""
    from datasketch import MinHash

    sketch = MinHash(num_perm=num_perm, seed=seed)
    sketch.update_batch([g.encode("utf-8") for g in grams])
    return sketch


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    return len(a & b) / len(a | b) if a or b else 1.0


@registered
@dataclass
class NearDedup(DataDefense):
    """Remove every training row whose word shingles overlap an earlier kept row's at Jaccard similarity
    ``threshold`` or more; the first of a group stays. Candidates come from MinHash LSH (``datasketch``);
    each is then checked with the exact Jaccard similarity, so a removal always meets the threshold (the
    hashing may miss a pair near it, never add one below it).

    Parameters:
        threshold: the Jaccard similarity, in (0, 1], at or above which a row is a near duplicate (1.0: the
            same shingle sets, close to ``dedup`` with whitespace normalised).
        shingle: words per shingle (default 3).
        num_perm: MinHash permutations (more: fewer missed pairs, slower).
        seed: the MinHash seed.
    """

    name = "near_dedup"
    summary = ("remove training rows whose word 3-grams overlap an earlier row's at Jaccard >= threshold (MinHash "
               "LSH, checked exactly); the first of a group stays")
    reads: ClassVar[str] = "rows"

    threshold: float = 0.8
    shingle: int = 3
    num_perm: int = 128
    seed: int = 1

    def check(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise self.fail("threshold", "must lie in (0, 1]")
        if self.shingle < 1:
            raise self.fail("shingle", "must be a positive number of words")
        if self.num_perm < 16:
            raise self.fail("num_perm", "must be at least 16")

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        """The near-duplicate rows, each scored with its exact Jaccard similarity to the kept row it repeats;
        ``details``: ``groups`` (kept rows that others repeat) and ``candidates_checked`` (LSH candidate pairs
        whose exact similarity was computed)."""
        from datasketch import MinHashLSH

        ids = row_ids(rows)
        # candidates at a looser cut when the threshold is high (the LSH needs two bands or more); the exact
        # check below decides
        lsh = MinHashLSH(threshold=min(self.threshold, LSH_MAX_THRESHOLD), num_perm=self.num_perm)
        kept: dict[str, set[str]] = {}
        scores: dict[str, float] = {}
        repeated: set[str] = set()
        checked = 0
        for row_id, row in zip(ids, rows):
            grams = shingles(row, self.shingle)
            sketch = minhash(grams, self.num_perm, self.seed)
            best, match = 0.0, None
            for other in lsh.query(sketch):
                checked += 1
                similarity = jaccard(grams, kept[other])
                if similarity > best:
                    best, match = similarity, other
            if match is not None and best >= self.threshold:
                scores[row_id] = best
                repeated.add(match)
                continue
            kept[row_id] = grams
            lsh.insert(row_id, sketch)
        removed = tuple(i for i in ids if i in scores)
        return Selection(removed, scores, {"groups": len(repeated), "candidates_checked": checked})
