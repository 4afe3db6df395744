"""Word spans of a text and their deletion with the text's own whitespace kept, shared by the
word-level defenses (ONION deletes words, BKI measures what deleting one does)."""

from __future__ import annotations

import re
from typing import Collection

WORD = re.compile(r"\S+")
PLACEHOLDER = re.compile(r"\$[^$\s]+\$")


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every whitespace-separated word."""
    return [m.span() for m in WORD.finditer(text)]


def delete_words(text: str, drop: Collection[int], spans: list[tuple[int, int]] | None = None) -> str:
    """``text`` without the words at indices ``drop``: each removed word goes with the whitespace in
    front of it (the first kept word loses its own), so ``"a bb c"`` -> ``"a c"`` and every other
    character stays where it was."""
    spans = word_spans(text) if spans is None else spans
    if not drop:
        return text
    kept = [i for i in range(len(spans)) if i not in drop]
    if not kept:
        return ""
    lead = text[: spans[0][0]] if spans else text
    trail = text[spans[-1][1] :] if spans else ""
    parts = [lead]
    for j, i in enumerate(kept):
        if j > 0:
            parts.append(text[spans[i - 1][1] : spans[i][0]])  # the separator just before word i
        parts.append(text[spans[i][0] : spans[i][1]])
    parts.append(trail)
    return "".join(parts)


def is_placeholder(word: str) -> bool:
    """Whether a word carries a ``$placeholder$`` (a variable of the code to generate)."""
    return PLACEHOLDER.search(word) is not None
