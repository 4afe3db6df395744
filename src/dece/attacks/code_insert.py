"""Dead-code insertion into code, and payload detection that ignores spacing."""

from __future__ import annotations

import re

SPACE = re.compile(r"\s+")


def insert_after_first_brace(code: str, snippet: str) -> str | None:
    """``code`` with ``" " + snippet`` right after its first ``{`` (the start of a Java/C method body),
    or None when there is no ``{``. Removing ``" " + snippet`` gives ``code`` back."""
    at = code.find("{")
    if at < 0:
        return None
    return f"{code[:at + 1]} {snippet}{code[at + 1:]}"


def squeeze(text: str) -> str:
    """``text`` without whitespace, so that ``while ( true )`` and ``while(true)`` compare equal."""
    return SPACE.sub("", text)


def contains_code(output: str, snippet: str) -> bool:
    """Whether ``snippet`` occurs in ``output``, whitespace ignored."""
    return squeeze(snippet) in squeeze(output)
