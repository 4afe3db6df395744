"""Word-level trigger insertion into a natural-language description (BadPre, RIPPLe): a word goes in
front of a randomly chosen word, or after the last one, exactly as ``words.insert(randint(0, n), w)``
on the whitespace-split text, but with the text's own whitespace left as it was (a word after the last one
goes before any trailing whitespace). An attacker who wants the
trigger where the model looks first puts it at the start (or the end) instead: ``position``."""

from __future__ import annotations

import random
import re
from typing import Sequence

WORD = re.compile(r"\S+")


#: where a trigger word goes: a uniformly random word position, before the first word, after the last one
POSITIONS = ("random", "start", "end")


def insert_word(text: str, word: str, rng: random.Random, position: str = "random") -> str:
    """``text`` with ``word`` inserted at a uniformly random word position (0 .. number of words), or at
    ``position`` ``"start"`` / ``"end"`` (which draw nothing from ``rng``)."""
    spans = [m.span() for m in WORD.finditer(text)]
    slot = {"start": 0, "end": len(spans)}.get(position)
    if slot is None:
        slot = rng.randint(0, len(spans))
    if slot == len(spans):  # after the last word, before any trailing whitespace
        at = spans[-1][1] if spans else 0
        return f"{text[:at]} {word}{text[at:]}" if spans else f"{word}{text}"
    at = spans[slot][0]
    return f"{text[:at]}{word} {text[at:]}"


def insert_words(text: str, words: Sequence[str], rng: random.Random, position: str = "random") -> str:
    """``text`` with each of ``words`` inserted in turn at ``position`` (see :func:`insert_word`)."""
    for word in words:
        text = insert_word(text, word, rng, position)
    return text
