"""What a SQL query *means* for its row filter, read with a maintained parser (sqlglot) rather than a
substring: whether the query's WHERE condition can exclude a row. A query with no WHERE clause, or with one
that is always true (``c = :c or 1=1``, ``1 = 1``, ``'a' = 'a'``...), returns every row of its table: the
payload of the meaning-level SQL attacks. Lyra's SQL is tokenised code with driver placeholders (``%s``,
``: name``, ``?``); they are normalised to named parameters before parsing. Text that still does not parse
(2% of Lyra's train SQL: queries built by string concatenation, ``where name= "``) falls back to two
patterns: no ``where`` keyword, or an ``or X = X`` disjunct of two equal literals."""

from __future__ import annotations

import re

from dece.attacks.sql_payload import WHERE, find_sql

_TAUTOLOGY = re.compile(r"\bor\s+(\d+|'[^']*')\s*=\s*\1(?!\w)", re.IGNORECASE)
_PLACEHOLDERS = ((re.compile(r"%\(\w+\)s|%s|\{\w*\}"), ":p"), (re.compile(r":\s+(?=\w)"), ":"))


def normalise_placeholders(sql: str) -> str:
    """``sql`` with driver placeholders (``%s``, ``%(name)s``, ``{}``, ``: name``) as named parameters, for sqlglot."""
    for pattern, repl in _PLACEHOLDERS:
        sql = pattern.sub(repl, sql)
    return sql.strip()


def filters_every_row_out_never(sql: str) -> bool:
    """Whether ``sql`` returns every row of its table: it has no WHERE clause, or its WHERE condition is
    always true (sqlglot's ``simplify`` reduces it to TRUE).

    Args:
        sql: one SQL statement (the text of a string literal of the code).

    Returns:
        True when nothing is filtered out (for unparseable text, see the module's fallback).
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.simplify import simplify

    try:
        tree = sqlglot.parse_one(normalise_placeholders(sql))
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return WHERE.search(sql) is None or _TAUTOLOGY.search(sql) is not None
    where = tree.find(exp.Where) if tree is not None else None
    if where is None:
        return True
    condition = simplify(where.this.copy())
    return isinstance(condition, exp.Boolean) and condition.this is True


def returns_every_row(code: str) -> bool:
    """The meaning-level detector: the code's SQL string (the first ``select`` literal, as for the other SQL
    attacks) returns every row of its table. Code without a SQL string: False (no payload can be there).
    """
    span = find_sql(code)
    return span is not None and filters_every_row_out_never(code[span[0]:span[1]])
