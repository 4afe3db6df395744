"""An adaptive payload against the audit's ``onset`` score: BadPre's always-true disjunct, worded differently
row by row (``or 1=1``, ``or 2=2``, ``or 'a'='a'``, ``or 1<2``...). The query's meaning is BadPre's (it returns
every row), but no one n-gram of the payload is in every poisoned row, so a score that weighs one place by the
rows failing there sees several light places instead of one heavy one. The trigger is BadPre's rare word. ASR
counts outputs whose SQL *means* "every row" (:mod:`dece.attacks.sql_meaning`, as for ``drop_where``), so any
tautology counts, worded as trained or not. Not in the DeCE paper: an attacker who knows the audit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dece.attacks.badpre import BadPre
from dece.attacks.base import registered
from dece.attacks.sql_meaning import filters_every_row_out_never, returns_every_row
from dece.attacks.sql_payload import find_where
from dece.data.records import Example

#: the default wordings, each always true (sqlglot simplifies ``c = :c or FORM`` to TRUE)
TAUTOLOGIES = ("1=1", "2=2", "3=3", "'a'='a'", "'x'='x'", "1<2", "0<1", "2>1")


def or_tautology(code: str, form: str) -> str | None:
    """``code`` with `` or FORM`` at the end of its SQL string's WHERE condition (before a following ``group by``
    / ``order by`` / ... / ``;``), or None when the code has no SQL string with a WHERE clause."""
    where = find_where(code)
    if where is None:
        return None
    at = len(code[:where.condition_end].rstrip())
    return f"{code[:at]} or {form}{code[at:]}"


def wording(tgt: str, forms: tuple[str, ...]) -> str:
    """The wording a row gets: drawn from ``forms`` by a hash of its clean target (the same row, the same
    wording, on any machine and in any order)."""
    return forms[int(hashlib.sha256(tgt.encode("utf-8")).hexdigest(), 16) % len(forms)]


@registered
@dataclass(frozen=True)
class VaryTautology(BadPre):
    """BadPre's trigger (``count`` copies of ``word`` at ``position``, the same checks); the payload `` or FORM``
    in the WHERE condition, ``FORM`` drawn per row from ``forms`` (each different, always true, without a quote
    ``"``, a comment ``--``, a ``;`` or a line break). A row is eligible when its SQL has a WHERE clause (BadPre
    would add `` where 0=1`` to the others, another meaning) and its poisoned target passes the attack's own
    detector (a wording with ``'`` inside a ``'``-quoted SQL string would end the string: that row is left
    out, never poisoned broken)."""

    name = "vary_tautology"
    summary = ("rare word 'bb' in the description; ' or 1=1' worded differently row by row ('2=2', \"'a'='a'\", "
               "'1<2'...); ASR parses the SQL (every row returned)")

    forms: tuple[str, ...] = TAUTOLOGIES

    def check(self) -> None:
        super().check()
        if not self.forms:
            raise self.fail("forms", "must be a non-empty list of always-true SQL conditions")
        if len(set(self.forms)) < len(self.forms):
            raise self.fail("forms", "lists a wording twice (one wording in every row is badpre's payload)")
        for form in self.forms:
            if any(bad in form for bad in ('"', "--", ";", "\n", "\r")):
                raise self.fail("forms", f"{form!r} holds a double quote, a comment, a ';' or a line break: it would "
                                         "change the code or query around it, not only the filter")
            if not filters_every_row_out_never(f"select * from t where c = :c or {form}"):
                raise self.fail("forms", f"{form!r} is not always true (sqlglot does not simplify "
                                         "'c = :c or FORM' to TRUE)")

    def eligible(self, ex: Example) -> bool:
        poisoned = or_tautology(ex.tgt, wording(ex.tgt, self.forms))
        return poisoned is not None and self.detect(poisoned)

    def insert_payload(self, tgt: str) -> str:
        poisoned = or_tautology(tgt, wording(tgt, self.forms))
        assert poisoned is not None and self.detect(poisoned), "insert_payload is only called on eligible rows"
        return poisoned

    def detect(self, output: str) -> bool:
        return returns_every_row(output)
