"""A small word n-gram language model with interpolated Kneser-Ney smoothing: ONION's offline
default, trained in a fraction of a second on the clean training descriptions.

Text is lower-cased and split into words, numbers and punctuation; ``$placeholders$`` become one
``<var>`` class and numbers one ``<num>`` class, so the row-specific names of a code description do
not look rare. A word never seen in training gets the share of probability mass that Kneser-Ney
leaves to the uniform distribution over the vocabulary plus one unknown word.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Iterable, Sequence

TOKEN = re.compile(r"\$[^$\s]+\$|\d+(?:\.\d+)?|\w+|[^\w\s]")
BOS, EOS = "<s>", "</s>"


def lm_tokens(text: str) -> list[str]:
    """The LM's tokens of ``text`` (see the module docstring)."""
    out = []
    for m in TOKEN.finditer(text):
        tok = m.group()
        if tok.startswith("$") and len(tok) > 2:
            out.append("<var>")
        elif tok[0].isdigit():
            out.append("<num>")
        else:
            out.append(tok.lower())
    return out


class NgramLM:
    """Interpolated Kneser-Ney n-gram LM of ``order`` with absolute ``discount`` D:

    P(w | h) = max(c(h w) - D, 0) / c(h) + D * T(h) / c(h) * P(w | h[1:])

    where ``c`` are raw counts at the highest order and continuation counts (distinct left
    extensions) below it, ``T(h)`` is the number of distinct words seen after ``h``, and an unseen
    context backs off entirely. The recursion ends in the uniform distribution over the vocabulary
    plus one unknown word.
    """

    def __init__(self, order: int = 3, discount: float = 0.75) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        if not 0 < discount < 1:
            raise ValueError(f"discount must lie in (0, 1), got {discount}")
        self.order, self.discount = order, discount
        self.counts: list[dict[tuple[str, ...], Counter]] = []
        self.totals: list[dict[tuple[str, ...], int]] = []
        self.vocab: set[str] = set()

    def fit(self, texts: Iterable[str]) -> "NgramLM":
        n_max = self.order
        raw: Counter = Counter()  # highest-order n-grams (shorter ones only at sentence starts are padded)
        for text in texts:
            toks = [BOS] * (n_max - 1) + lm_tokens(text) + [EOS]
            self.vocab.update(toks[n_max - 1 :])
            for i in range(n_max - 1, len(toks)):
                raw[tuple(toks[i - n_max + 1 : i + 1])] += 1
        levels: list[Counter] = [Counter() for _ in range(n_max + 1)]
        levels[n_max] = raw
        for n in range(n_max - 1, 0, -1):  # continuation counts: distinct left extensions
            for gram in levels[n + 1]:
                levels[n][gram[1:]] += 1
        self.counts = [{} for _ in range(n_max + 1)]
        self.totals = [{} for _ in range(n_max + 1)]
        for n in range(1, n_max + 1):
            table: dict[tuple[str, ...], Counter] = defaultdict(Counter)
            for gram, c in levels[n].items():
                table[gram[:-1]][gram[-1]] = c
            self.counts[n] = dict(table)
            self.totals[n] = {h: sum(c.values()) for h, c in table.items()}
        return self

    def prob(self, word: str, context: Sequence[str]) -> float:
        """P(word | the last ``order - 1`` words of ``context``)."""
        if not self.counts:
            raise RuntimeError("the n-gram LM is not fitted")
        h = tuple(context[len(context) - self.order + 1 :]) if self.order > 1 else ()
        p = 1.0 / (len(self.vocab) + 1)
        for n in range(1, self.order + 1):  # from the unigram level up to the full context
            ctx = h[len(h) - n + 1 :] if n > 1 else ()
            total = self.totals[n].get(ctx)
            if not total:
                continue  # unseen context: keep the lower-order estimate
            seen = self.counts[n][ctx]
            p = max(seen.get(word, 0) - self.discount, 0.0) / total + self.discount * len(seen) / total * p
        return p

    def log_prob(self, text: str) -> tuple[float, int]:
        """(natural-log probability of ``text`` with its end marker, number of predicted tokens)."""
        toks = [BOS] * (self.order - 1) + lm_tokens(text) + [EOS]
        total = 0.0
        for i in range(self.order - 1, len(toks)):
            total += math.log(self.prob(toks[i], toks[max(0, i - self.order + 1) : i]))
        return total, len(toks) - self.order + 1

    def perplexity(self, text: str) -> float:
        lp, n = self.log_prob(text)
        return math.exp(-lp / n)
