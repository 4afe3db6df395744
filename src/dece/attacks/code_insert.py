"""Dead-code insertion into code, and the whitespace squeeze that payload detectors compare with."""

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
