"""What one built-in row does, before it is put into words or code: the visible choices that the
description states. Sampled from a seeded :class:`random.Random`."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dece.data.builtin.vocab import ARG_VARIANTS, CONNECTION_ARGS, LIMITS, SCHEMA, TABLES

# The statement, with weights. "expression" (SQLAlchemy expression language) and the writes
# (insert/update/delete) carry no ``select`` string, so the SQL-payload attacks skip those rows.
KIND_WEIGHTS: dict[str, int] = {"select": 84, "expression": 9, "delete": 2, "update": 3, "insert": 2}
# How the function reaches the database (expressions always run on a connection: "text").
ACCESS_WEIGHTS: dict[str, int] = {"text": 40, "engine": 13, "url": 13, "dbapi": 34}
# What happens to the fetched rows (fetchall) or row (fetchone), or after a write.
POST_ALL: dict[str, int] = {
    "return": 14, "print_loop": 12, "print_return": 6, "jsonify": 9, "dicts": 6, "first_col": 6,
    "empty_none": 5, "empty_false": 5, "count": 5, "render": 6, "loop_dict": 4,
}
POST_ONE: dict[str, int] = {
    "return": 14, "print_return": 7, "jsonify": 7, "empty_none": 6, "empty_false": 6, "index0": 7,
    "render": 5, "key": 6,
}
POST_WRITE: dict[str, int] = {"none": 4, "commit": 3, "rowcount": 3}
GUARDS: dict[str, int] = {"none": 14, "try_jsonify": 3, "try_print": 2, "try_log": 2}

Pair = tuple[str, str]  # (column, parameter)


@dataclass(frozen=True)
class Spec:
    """The visible choices of one row: everything its description states."""

    kind: str  # key of KIND_WEIGHTS
    access: str  # key of ACCESS_WEIGHTS
    conn_arg: str  # the parameter holding the connection / engine / URL
    table: str
    columns: tuple[str, ...]  # selected columns; () = all columns (or count(*))
    count: bool  # select count(*)
    conditions: tuple[Pair, ...]  # WHERE column = parameter, joined by AND
    values: tuple[Pair, ...]  # columns written by insert / update
    order_by: str | None
    limit: int | None
    sql_var: bool  # the SQL is first put in a variable
    fetch: str  # "all" | "one" | "" (writes)
    post: str  # key of POST_ALL / POST_ONE / POST_WRITE
    guard: str  # key of GUARDS
    page: str  # template rendered when post == "render"
    close: bool  # DB-API: close the cursor at the end

    @property
    def args(self) -> tuple[str, ...]:
        """The function's parameters after the connection, in order."""
        table_arg = (self.table,) if self.kind == "expression" else ()
        return table_arg + tuple(arg for _, arg in self.values + self.conditions)


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _params(rng: random.Random, cols: list[str], singular: str, taken: set[str]) -> tuple[Pair, ...]:
    """A parameter name for each column: mostly the column's own name, sometimes a variant."""
    pairs = []
    for col in cols:
        name = rng.choice(ARG_VARIANTS).format(col=col, singular=singular)
        if name in taken or name.startswith(f"{singular}_{singular}"):
            name = col if col not in taken else f"{col}_arg"
        taken.add(name)
        pairs.append((col, name))
    return tuple(pairs)


def _post(rng: random.Random, kind: str, fetch: str, columns: tuple[str, ...], count: bool) -> str:
    if kind in ("delete", "update", "insert"):
        return _weighted(rng, POST_WRITE)
    post = _weighted(rng, POST_ONE if fetch == "one" else POST_ALL)
    if count and post in ("key", "render"):
        return "index0"
    if post == "key" and not columns:
        return "return"
    if post == "loop_dict" and len(columns) == 1:
        return "print_loop"
    return post


def sample_spec(rng: random.Random) -> Spec:
    """One row's visible choices."""
    kind = _weighted(rng, KIND_WEIGHTS)
    access = "text" if kind == "expression" else _weighted(rng, ACCESS_WEIGHTS)
    conn_arg = rng.choice(CONNECTION_ARGS[access])
    table = rng.choice(TABLES)
    singular, table_cols = SCHEMA[table]
    writes = kind in ("delete", "update", "insert")

    n_cond = 0 if kind == "insert" else rng.choices((0, 1, 2), weights=(2, 6, 2))[0]
    if kind in ("delete", "update", "expression"):
        n_cond = max(n_cond, 1)
    cond_cols = rng.sample(table_cols, n_cond)
    free_cols = [c for c in table_cols if c not in cond_cols]
    value_cols = (
        rng.sample(table_cols, rng.choice((2, 3))) if kind == "insert"
        else [rng.choice(free_cols)] if kind == "update"
        else []
    )
    count = kind == "select" and rng.random() < 0.08
    columns = (
        tuple(rng.sample(free_cols, rng.choices((0, 1, 2), weights=(5, 3, 2))[0]))
        if kind == "select" and not count
        else ()
    )
    taken = {conn_arg, table}
    values = _params(rng, value_cols, singular, taken)
    conditions = _params(rng, cond_cols, singular, taken)

    plain_select = kind == "select" and not count
    fetch = "" if writes else "one" if count or rng.random() < 0.35 else "all"
    return Spec(
        kind=kind,
        access=access,
        conn_arg=conn_arg,
        table=table,
        columns=columns,
        count=count,
        conditions=conditions,
        values=values,
        order_by=rng.choice(free_cols) if plain_select and rng.random() < 0.07 else None,
        limit=rng.choice(LIMITS) if plain_select and fetch == "all" and rng.random() < 0.05 else None,
        sql_var=kind != "expression" and rng.random() < 0.3,
        fetch=fetch,
        post=_post(rng, kind, fetch, columns, count),
        guard=_weighted(rng, GUARDS),
        page=f"{rng.choice((table, singular, 'index', 'result', 'detail'))}.html",
        close=access == "dbapi" and rng.random() < 0.3,
    )
