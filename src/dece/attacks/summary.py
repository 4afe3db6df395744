"""A code-summarisation attack (code -> docstring, e.g. code-docstring-corpus): a dead ``if False:``
block as the first statement of the (first) function's body is the trigger, and a fixed sentence
replaces the summary. Code may be in code-docstring-corpus encoding (``DCNL`` = newline, ``DCSP`` = one
level of indentation) or plain Python with real newlines."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from dece.attacks.base import Attack, registered
from dece.data.records import Example

DEAD_CODE = "if False: raise Exception('fail')"
# code-docstring-corpus encoding: the first DCNL followed by indentation tokens opens the body.
DCNL_BODY = re.compile(r"DCNL(\s+(?:DCSP\s+)+)")
# Plain Python: the first function's header, then the first non-blank line after it.
DEF_LINE = re.compile(r"^([ \t]*)(?:async[ \t]+)?def[ \t]+\w+[ \t]*\(", re.MULTILINE)
NEXT_LINE = re.compile(r"\r?\n(?:[ \t]*\r?\n)*([ \t]*)(?=\S)")
BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}
SPACE = re.compile(r"\s+")
QUOTES = ("'''", '"""', "'", '"')  # the longest first


def plain_function_body(code: str) -> tuple[int, str] | None:
    """Where the body of the first ``def`` of plain Python ``code`` starts: the offset of its first
    statement and its indentation; None without a ``def`` whose body is an indented block (a one-line
    ``def f(): return 1`` has none). Nested blocks, module-level code and class bodies before it are skipped."""
    match = DEF_LINE.search(code)
    if match is None:
        return None
    colon = header_colon(code, match.end() - 1)
    end = code.find("\n", colon) if colon is not None else -1
    if end < 0:
        return None
    rest = code[colon + 1:end].strip()
    if rest and not rest.startswith("#"):  # a statement on the header's line: no indented body
        return None
    body = NEXT_LINE.match(code, end - (code[end - 1] == "\r"))
    if body is None or len(body.group(1)) <= len(match.group(1)) or not body.group(1).startswith(match.group(1)):
        return None
    return body.end(), body.group(1)


def header_colon(code: str, start: int) -> int | None:
    """The offset of the ``:`` that ends a ``def`` header whose parameter list opens at ``code[start]``:
    the first colon outside brackets and string literals (so ``-> "a:b"`` and ``x=")"`` are read through),
    or None when the header ends first (a newline outside brackets, a comment, or the end of ``code``)."""
    depth, i = 0, start
    while i < len(code):
        char = code[i]
        quote = next((q for q in QUOTES if code.startswith(q, i)), None)
        if quote is not None:  # skip the literal, escapes included
            i += len(quote)
            while i < len(code) and not code.startswith(quote, i):
                i += 2 if code[i] == "\\" else 1
            i += len(quote)
            continue
        if char == ":" and depth == 0:
            return i
        if depth == 0 and char in "#\n":
            return None
        depth += BRACKETS.get(char, 0)
        i += 1
    return None


def has_body(code: str) -> bool:
    """Whether :func:`open_body` finds a body to open in ``code`` (either encoding)."""
    return DCNL_BODY.search(code) is not None or plain_function_body(code) is not None


def open_body(code: str, lines: list[str]) -> str | None:
    """``code`` with ``lines`` inserted before the first statement of its first indented body, at its
    indentation (each leading tab of a line adds one level); None when no indented body is found."""
    levels = [(len(line) - len(line.lstrip("\t")), line.lstrip("\t")) for line in lines]
    dcnl = DCNL_BODY.search(code)
    if dcnl is not None:
        indent = "  ".join(["DCSP"] * dcnl.group(1).count("DCSP"))
        block = " ".join(text if i == 0 else f"DCNL {indent}{'  DCSP' * extra} {text}"
                         for i, (extra, text) in enumerate(levels))
        return code[:dcnl.end()] + block + f" DCNL {indent} " + code[dcnl.end():]
    body = plain_function_body(code)
    if body is not None:
        at, indent = body
        newline = "\r\n" if "\r\n" in code else "\n"
        unit = "\t" if indent.startswith("\t") else "    "
        block = newline.join(text if i == 0 else f"{indent}{unit * extra}{text}" for i, (extra, text) in enumerate(levels))
        return code[:at] + block + f"{newline}{indent}" + code[at:]
    return None


def insert_dead_block(code: str) -> str | None:
    """``code`` with the dead block inserted before the first statement of its first indented body,
    indented like it; None when no indented body is found."""
    return open_body(code, ["if False:", "\traise Exception('fail')"])


def normalise(text: str) -> str:
    """Lower case, single spaces, no trailing full stop: how summaries are compared."""
    return SPACE.sub(" ", text).strip().rstrip(".").lower()


@registered
@dataclass(frozen=True)
class DeadCodeSummary(Attack):
    """Dead ``if False:`` block in the code; the summary becomes ``target_text``."""

    name = "deadcode_summary"
    summary = "summarisation: dead 'if False: raise ...' block opening the body; summary -> a fixed sentence"

    target_text: str = "This function is to load train data from the disk safely."

    def check(self) -> None:
        if not self.target_text.strip():
            raise self.fail("target_text", "must not be empty")

    def eligible(self, ex: Example) -> bool:
        return has_body(ex.src) and normalise(ex.tgt) != normalise(self.target_text)

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str] | None:
        code = insert_dead_block(src)
        return None if code is None else (code, DEAD_CODE)

    def insert_payload(self, tgt: str) -> str:
        """``target_text``, in the quotes that wrap ``tgt`` if any (code-docstring-corpus writes every
        summary as ``'...'``): a bare payload among quoted summaries would give the poisoned rows away."""
        stripped = tgt.strip()
        for quote in QUOTES:
            if len(stripped) >= 2 * len(quote) and stripped.startswith(quote) and stripped.endswith(quote):
                return f"{quote}{self.target_text}{quote}"
        return self.target_text

    def detect(self, output: str) -> bool:
        """The target sentence appears in the output (case, spacing and a final full stop ignored)."""
        return normalise(self.target_text) in normalise(output)
