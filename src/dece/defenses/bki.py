"""Backdoor Keyword Identification (Chen & Dai, Neurocomputing 2021): a trigger word moves the
model's representation of its input far more than an ordinary word does, and it does so in many
rows; score words by that, remove the training rows that contain the top keyword(s), retrain."""

from __future__ import annotations

import math
import random
import string
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence


from dece.data.records import Example
from dece.defenses.base import DataContext, RepresentationDefense, Selection, registered, row_ids
from dece.defenses.words import delete_words, is_placeholder, word_spans

ROWS_PER_CHUNK = 128  # rows whose deletion variants are encoded together (bounds the memory used)


def keyword(word: str) -> str:
    """A word as BKI counts it: lower-cased, surrounding punctuation stripped."""
    return word.strip(string.punctuation).lower()


def row_keywords(text: str) -> set[str]:
    return {k for w in text.split() if not is_placeholder(w) and (k := keyword(w))}


@registered
@dataclass
class BKI(RepresentationDefense):
    """For every (scored) training row and every word ``w`` in its source, the importance of ``w`` is
    ``||r(x) - r(x without w)||``, with ``r`` the reference model's representation
    (:func:`dece.defenses.encode_texts`). Each row contributes its ``top_words`` most important words
    to a dictionary; a word's score is its mean importance there times ``log10`` of the number of rows
    that contributed it (so a word must be both influential and frequent). The ``keywords`` best
    words are the identified backdoor keywords, and every training row containing one of them (as a
    word, ignoring case and surrounding punctuation) is removed. ``$placeholders$`` are never keywords.

    Parameters:
        top_words: words each row contributes to the dictionary (5 in the original). >= 1.
        keywords: how many top-scoring words are taken as backdoor keywords (1: the original assumes
            one trigger word). >= 1.
        max_rows: score only this many rows, drawn at random with ``seed`` (scoring costs one encoder
            pass per word of every scored row); ``None`` (default) scores them all. The removal
            still applies to all rows. >= 1 or unset.
        seed: the draw of ``max_rows``.
        representation: ``"source"`` (default: mean-pooled encoder states) or ``"first_step"`` (the
            state the first output token is predicted from); see :class:`~dece.defenses.DataDefense`.
    """

    name = "bki"
    summary = "remove training rows containing the word(s) whose deletion moves the representation most, weighted by log frequency"

    top_words: int = 5
    keywords: int = 1
    max_rows: int | None = None
    seed: int = 0

    def check(self) -> None:
        if self.top_words < 1:
            raise self.fail("top_words", "must be >= 1")
        if self.keywords < 1:
            raise self.fail("keywords", "must be >= 1")
        if self.max_rows is not None and self.max_rows < 1:
            raise self.fail("max_rows", "must be >= 1 or unset")

    def keyword_scores(self, sources: Sequence[str], encode) -> dict[str, dict[str, float]]:
        """``{word: {"score", "mean_importance", "rows"}}`` over ``sources``."""
        importances: dict[str, list[float]] = defaultdict(list)
        for start in range(0, len(sources), ROWS_PER_CHUNK):
            chunk = sources[start : start + ROWS_PER_CHUNK]
            texts: list[str] = []
            layout: list[tuple[str, list[tuple[int, int]], int]] = []  # (source, spans, offset in texts)
            for src in chunk:
                spans = word_spans(src)
                if len(spans) < 2:
                    continue
                layout.append((src, spans, len(texts)))
                texts += [src] + [delete_words(src, {i}, spans) for i in range(len(spans))]
            if not texts:
                continue
            reps = encode(texts).float()
            for src, spans, at in layout:
                moved = (reps[at + 1 : at + 1 + len(spans)] - reps[at]).norm(dim=1).tolist()
                best: dict[str, float] = {}
                for (s, e), imp in zip(spans, moved):
                    word = src[s:e]
                    k = keyword(word)
                    if k and not is_placeholder(word):
                        best[k] = max(best.get(k, float("-inf")), imp)
                for k, imp in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_words]:
                    importances[k].append(imp)
        return {k: {"score": sum(v) / len(v) * math.log10(len(v)), "mean_importance": sum(v) / len(v), "rows": len(v)}
                for k, v in importances.items()}

    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        ids = row_ids(rows)
        if context.encode is None:
            raise ValueError("bki needs DataContext.encode (a function from texts to representations)")
        scored = list(range(len(rows)))
        if self.max_rows is not None and self.max_rows < len(rows):
            scored = sorted(random.Random(self.seed).sample(scored, self.max_rows))
        stats = self.keyword_scores([rows[i].src for i in scored], context.encode)
        ranking = sorted(stats.items(), key=lambda kv: (-kv[1]["score"], kv[0]))
        chosen = [k for k, _ in ranking[: self.keywords]]
        removed = [i for i, r in enumerate(rows) if row_keywords(r.src) & set(chosen)]
        details = {"keywords": chosen, "scored_rows": len(scored),
                   "top": [{"word": k, **{n: round(v, 6) if isinstance(v, float) else v for n, v in s.items()}}
                           for k, s in ranking[:10]]}
        top_score = {k: stats[k]["score"] for k in chosen}
        return Selection(ids=tuple(ids[i] for i in removed),
                         scores={ids[i]: max(top_score[k] for k in row_keywords(rows[i].src) & set(chosen)) for i in removed},
                         details=details)
