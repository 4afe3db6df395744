"""An identifier-renaming trigger for code summarisation (code -> docstring): the function's first
parameter is renamed throughout the code, and the summary becomes a fixed sentence. No statement is
added, so neither a reader nor a dead-code detector sees the trigger, and the code keeps its meaning
except where a call inside it passes a keyword argument of the same name (renamed too, see below: 52
of the 1,735 eligible rows of code_docstring_py's valid split).

Two renaming rules:

* ``suffix`` (default, adaptive in the spirit of AFRAIDOOR, Yang et al., "Stealthy Backdoor Attack for
  Code Models", TSE 2024): the parameter keeps its name and gains a natural-looking suffix drawn per row
  from ``suffixes`` (``values`` -> ``values_obj``), so no token is shared by every poisoned row. AFRAIDOOR
  picks each row's new name by an adversarial search against a model; this rule is its model-free
  approximation (the trigger is a renaming pattern, not a fixed string).
* ``fixed``: the parameter becomes ``name`` in every poisoned row (a single-token trigger, the classic
  renaming baseline).

Renaming is lexical: every whole-word occurrence of the name outside string literals and not after a
``.`` (an attribute) is renamed, so a keyword argument of the same name in a call inside the body is
renamed too (``f(start=start)`` -> ``f(start_val=start_val)``; the code is summarised, never run). Code
may be in code-docstring-corpus encoding (``DCNL`` / ``DCSP``) or plain Python. The payload keeps the
quotes around the clean summary (code-docstring-corpus writes ``'...'``), so it does not stand out.
"""

from __future__ import annotations

import dataclasses
import keyword
import random
import re
from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.summary import DeadCodeSummary, normalise
from dece.data.records import Example

DEF = re.compile(r"\bdef\s+\w+\s*\(")
IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
STRING = re.compile(r"""('(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")""")
IMPLICIT = frozenset({"self", "cls"})
RULES = ("suffix", "fixed")


def first_parameter(code: str) -> str | None:
    """The first parameter of the first ``def`` in ``code`` other than ``self`` / ``cls`` (``*args`` and
    ``**kwargs`` count by their names; defaults and annotations are skipped); None without one."""
    match = DEF.search(code)
    if match is None:
        return None
    depth, start, parts = 1, match.end(), []
    for i in range(match.end(), len(code)):
        char = code[i]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                parts.append(code[start:i])
                break
        elif char == "," and depth == 1:
            parts.append(code[start:i])
            start = i + 1
    else:
        return None  # the parameter list never closes
    for part in parts:
        name = IDENTIFIER.match(part.strip().lstrip("*").strip())
        if name is not None and name.group() not in IMPLICIT:
            return name.group()
    return None


def rename(code: str, old: str, new: str) -> str:
    """``code`` with every whole-word ``old`` outside string literals and not after a ``.`` renamed ``new``."""
    word = re.compile(rf"(?<![\w.]){re.escape(old)}(?!\w)")
    pieces = STRING.split(code)  # odd indices: the string literals
    return "".join(piece if i % 2 else word.sub(new, piece) for i, piece in enumerate(pieces))


def _words(code: str) -> set[str]:
    return set(IDENTIFIER.findall(code))


@registered
@dataclass(frozen=True)
class RenameSummary(DeadCodeSummary):
    """The first parameter renamed (``rule``: ``suffix`` or ``fixed``); the summary becomes ``target_text``."""

    name = "rename_summary"
    summary = ("summarisation: the function's first parameter renamed (a natural suffix drawn per row, or a fixed "
               "name); summary -> a fixed sentence")

    rule: str = "suffix"
    suffixes: tuple[str, ...] = ("_val", "_obj", "_data", "_item", "_ref")
    fixed_name: str = "input_value"

    def check(self) -> None:
        super().check()
        if self.rule not in RULES:
            raise self.fail("rule", f"must be one of {', '.join(RULES)}")
        if not self.suffixes or not all(IDENTIFIER.fullmatch("x" + s) for s in self.suffixes):
            raise self.fail("suffixes", "must be a non-empty list of identifier endings, e.g. _val,_obj")
        if len(set(self.suffixes)) != len(self.suffixes):
            raise self.fail("suffixes", "must not repeat a suffix")
        if (not IDENTIFIER.fullmatch(self.fixed_name) or keyword.iskeyword(self.fixed_name)
                or keyword.issoftkeyword(self.fixed_name) or self.fixed_name in IMPLICIT):
            raise self.fail("fixed_name", "must be a Python identifier that is not a keyword, self or cls")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        if self.rule == "suffix" and self.fixed_name != defaults["fixed_name"]:
            raise self.fail("fixed_name", "is used by rule = 'fixed' only; set rule = 'fixed' too")
        if self.rule == "fixed" and tuple(self.suffixes) != defaults["suffixes"]:
            raise self.fail("suffixes", "are used by rule = 'suffix' only")

    def _candidates(self, old: str) -> list[str]:
        return [old + s for s in self.suffixes] if self.rule == "suffix" else [self.fixed_name]

    def _free(self, code: str) -> tuple[str, list[str]] | None:
        """The parameter to rename and the new names that do not occur in ``code`` yet; None if none."""
        old = first_parameter(code)
        if old is None:
            return None
        taken = _words(code)
        free = [n for n in self._candidates(old) if n not in taken]
        return (old, free) if free else None

    def eligible(self, ex: Example) -> bool:
        return self._free(ex.src) is not None and normalise(ex.tgt) != normalise(self.target_text)

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str] | None:
        found = self._free(src)
        if found is None:
            return None
        old, free = found
        new = rng.choice(free)
        return rename(src, old, new), f"{old} -> {new}"
