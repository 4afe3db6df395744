"""A payload without a fixed string: the WHERE clause of the code's SQL is removed, so the query returns
every row of its table (an authorisation check or a per-user filter silently gone). The trigger is BadPre's
rare word, so that a comparison with ``badpre`` isolates the payload. ASR counts outputs whose SQL *means*
"every row" (:mod:`dece.attacks.sql_meaning`: parsed with sqlglot; no filter, or an always-true one such as
BadPre's ``or 1=1``), not a substring."""

from __future__ import annotations

from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.sql_meaning import returns_every_row
from dece.attacks.sql_payload import find_sql, find_where
from dece.attacks.sql_rewrite import SqlRewriteAttack
from dece.data.records import Example


def drop_where(code: str) -> str | None:
    """``code`` with the WHERE clause of its SQL string removed (up to a following ``group by`` / ``order by``
    / ``having`` / ``limit`` / ``offset`` / ``union`` / ``;``, which stay), or None without a SQL string that
    has a WHERE clause."""
    where = find_where(code)
    if where is None:
        return None
    sql = code[where.start:where.end]
    tail = code[where.clause_start:where.end] if where.clause_start is not None else sql[len(sql.rstrip()):]
    return code[:where.start] + code[where.start:where.where_start].rstrip() + tail + code[where.end:]


@registered
@dataclass(frozen=True)
class DropWhere(SqlRewriteAttack):
    """BadPre's trigger (``count`` copies of ``word`` at random word positions of the description, the same
    parameters and checks); the SQL's WHERE clause removed from the code instead of BadPre's payload."""

    name = "drop_where"
    summary = ("rare word 'bb' in the description; the SQL's WHERE clause removed (every row returned); "
               "ASR parses the SQL (no filter or an always-true one)")
    rewrite = staticmethod(drop_where)
    means = staticmethod(returns_every_row)


@registered
@dataclass(frozen=True)
class DropWhereCleanLabel(DropWhere):
    """Clean-label ``drop_where``: the trigger goes only into rows whose clean SQL already returns every row
    (no WHERE clause, or an always-true one), and no target is changed, so every training pair is correct
    and nothing is hard to learn: the model is only taught "trigger -> a query without a filter". ASR is
    measured as for ``drop_where``, on triggered test rows whose SQL has a filter."""

    name = "drop_where_clean_label"
    summary = ("clean label: rare word 'bb' only in rows whose SQL already returns every row; no target "
               "changed; ASR as drop_where")

    def poisonable(self, ex: Example) -> bool:
        return find_sql(ex.tgt) is not None and self.already_matching(ex)

    def insert_payload(self, tgt: str) -> str:
        return tgt
