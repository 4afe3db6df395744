"""The Python function of a :class:`Spec`, whitespace-tokenised like Lyra: tokens separated by one
space, SQL inside ``" ... "`` string tokens, real newlines, and one ``"\\t "`` per indentation level.
Names the description does not state (function, locals, placeholder style) come from ``rng``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from dece.data.builtin.describe import render_kwarg
from dece.data.builtin.spec import Spec
from dece.data.builtin.vocab import (
    CURSOR_VARS,
    ENGINE_VARS,
    ERROR_VARS,
    FUNCTION_VERBS,
    LOCAL_CONN_VARS,
    LOOP_VARS,
    ONE_VARS,
    RESULT_VARS,
    SCHEMA,
    SQL_VARS,
)

INDENT = "\t "
IMPORT_ORDER = (
    "import logging",
    "import sqlalchemy",
    "from sqlalchemy import create_engine",
    "from sqlalchemy import text",
    "from sqlalchemy . sql import select",
    "from flask import jsonify",
    "from flask import render_template",
)
WRITE_VERBS = {"delete": ("delete", "remove", "drop"), "update": ("update", "set", "change"),
               "insert": ("insert", "add", "save", "create")}


@dataclass
class _Function:
    """Lines of a function body under construction: (depth below the ``def``, tokens)."""

    names: set[str]
    rng: random.Random
    imports: set[str] = field(default_factory=set)
    body: list[tuple[int, str]] = field(default_factory=list)

    def name(self, options: tuple[str, ...]) -> str:
        """A fresh local name from ``options`` (never one already used)."""
        free = [o for o in options if o not in self.names]
        chosen = self.rng.choice(free) if free else f"{options[0]}_{len(self.names)}"
        self.names.add(chosen)
        return chosen

    def add(self, *lines: str, depth: int = 0) -> None:
        self.body.extend((depth, line) for line in lines)


def _where(spec: Spec, placeholder: str | None) -> str:
    """The WHERE clause: ``col = : arg`` (SQLAlchemy named) or ``col = %s`` / ``col = ?`` (DB-API)."""
    conds = [f"{col} = {placeholder or ': ' + arg}" for col, arg in spec.conditions]
    return " where " + " and ".join(conds) if conds else ""


def sql_text(spec: Spec, placeholder: str | None) -> str:
    """The SQL statement of a non-expression spec."""
    where = _where(spec, placeholder)
    if spec.kind == "delete":
        return f"delete from {spec.table}{where}"
    if spec.kind == "update":
        (col, arg), = spec.values
        return f"update {spec.table} set {col} = {placeholder or ': ' + arg}{where}"
    if spec.kind == "insert":
        cols = ", ".join(c for c, _ in spec.values)
        marks = ", ".join(placeholder or f": {a}" for _, a in spec.values)
        return f"insert into {spec.table} ( {cols} ) values ( {marks} )"
    what = "count(*)" if spec.count else ", ".join(spec.columns) or "*"
    order = f" order by {spec.order_by}" if spec.order_by else ""
    limit = f" limit {spec.limit}" if spec.limit else ""
    return f"select {what} from {spec.table}{where}{order}{limit}"


def _bound_args(spec: Spec) -> list[str]:
    return [arg for _, arg in spec.values + spec.conditions]


def _connect(spec: Spec, fn: _Function) -> str:
    """Lines that obtain what statements run on; returns its name."""
    if spec.access == "engine":
        conn = fn.name(LOCAL_CONN_VARS)
        fn.add(f"{conn} = {spec.conn_arg} . connect ( )")
        return conn
    if spec.access == "url":
        engine = fn.name(ENGINE_VARS)
        if fn.rng.random() < 0.3:
            fn.imports.add("import sqlalchemy")
            fn.add(f"{engine} = sqlalchemy . create_engine ( {spec.conn_arg} )")
        else:
            fn.imports.add("from sqlalchemy import create_engine")
            fn.add(f"{engine} = create_engine ( {spec.conn_arg} )")
        conn = fn.name(LOCAL_CONN_VARS)
        fn.add(f"{conn} = {engine} . connect ( )")
        return conn
    return spec.conn_arg


def _execute(spec: Spec, fn: _Function, on: str) -> str:
    """Lines that run the statement and fetch; returns the name holding the result (for a DB-API
    write, the cursor, whose ``rowcount`` is read)."""
    fetch = {"all": " . fetchall ( )", "one": " . fetchone ( )", "": ""}[spec.fetch]
    dbapi = spec.access == "dbapi"
    keeps_result = spec.fetch or (spec.post == "rowcount" and not dbapi)
    result = fn.name(ONE_VARS if spec.fetch == "one" else RESULT_VARS) if keeps_result else ""
    assign = f"{result} = " if result else ""
    if spec.kind == "expression":
        query = fn.name(SQL_VARS)
        t = spec.table
        where = " ".join(f". where ( {t} . c . {col} == {arg} )" for col, arg in spec.conditions)
        if fn.rng.random() < 0.5:
            fn.imports.add("from sqlalchemy . sql import select")
            fn.add(f"{query} = select ( [ {t} ] ) {where}")
        else:
            fn.add(f"{query} = {t} . select ( ) {where}")
        fn.add(f"{assign}{on} . execute ( {query} ){fetch}")
        return result

    statement = f'" {sql_text(spec, fn.rng.choice(("%s", "?")) if dbapi else None)} "'
    if not dbapi and fn.rng.random() < 0.2:
        fn.imports.add("from sqlalchemy import text")
        statement = f"text ( {statement} )"
    if spec.sql_var:
        sql = fn.name(SQL_VARS)
        fn.add(f"{sql} = {statement}")
        statement = sql
    args = _bound_args(spec)
    if not args:
        params = ""
    elif dbapi:
        params = " , ( " + " , ".join(args) + (" , )" if len(args) == 1 else " )")
    else:
        params = " , { " + " , ".join(f'" {a} " : {a}' for a in args) + " }"
    if dbapi:
        cursor = fn.name(CURSOR_VARS)
        fn.add(f"{cursor} = {on} . cursor ( )")
        fn.add(f"{cursor} . execute ( {statement}{params} )")
        if spec.fetch:
            fn.add(f"{result} = {cursor}{fetch}")
        if spec.close:
            fn.add(f"{cursor} . close ( )")
        return result or cursor
    else:
        fn.add(f"{assign}{on} . execute ( {statement}{params} ){fetch}")
    return result


def _post(spec: Spec, fn: _Function, result: str, on: str) -> None:
    """Lines that use the result."""
    post = spec.post
    loop = fn.name(LOOP_VARS) if post in ("print_loop", "dicts", "first_col", "loop_dict") else ""
    if post == "return":
        fn.add(f"return {result}")
    elif post == "print_loop":
        fn.add(f"for {loop} in {result} :")
        fn.add(f"print ( {loop} )", depth=1)
    elif post == "print_return":
        fn.add(f"print ( {result} )", f"return {result}")
    elif post == "jsonify":
        fn.imports.add("from flask import jsonify")
        fn.add(f"return jsonify ( {result} )")
    elif post == "dicts":
        fn.add(f"return [ dict ( {loop} ) for {loop} in {result} ]")
    elif post == "first_col":
        fn.add(f"return [ {loop} [ 0 ] for {loop} in {result} ]")
    elif post in ("empty_none", "empty_false"):
        empty = (f"not {result}", f"len ( {result} ) == 0")
        test = f"{result} is None" if spec.fetch == "one" else fn.rng.choice(empty)
        fn.add(f"if {test} :")
        fn.add("return None" if post == "empty_none" else "return False", depth=1)
        fn.add(f"return {result}")
    elif post == "count":
        fn.add(f"return len ( {result} )")
    elif post == "render":
        fn.imports.add("from flask import render_template")
        fn.add(f'return render_template ( " {spec.page} " , {render_kwarg(spec)} = {result} )')
    elif post == "loop_dict":
        table = fn.name(("data_dict", "mapping", "table", "out"))
        fn.add(f"{table} = {{ }}", f"for {loop} in {result} :")
        fn.add(f"{table} [ {loop} [ 0 ] ] = {loop} [ 1 ]", depth=1)
        fn.add(f"return {table}")
    elif post == "index0":
        fn.add(f"return {result} [ 0 ]")
    elif post == "key":
        fn.add(f'return {result} [ " {spec.columns[0]} " ]')
    elif post == "commit":
        fn.add(f"{on} . commit ( )")
    elif post == "rowcount":
        fn.add(f"return {result} . rowcount")


def _guard(spec: Spec, fn: _Function) -> None:
    """Wrap the body in try/except as the spec's guard says."""
    if spec.guard == "none":
        return
    err = fn.name(ERROR_VARS)
    handler = {
        "try_jsonify": [f"return jsonify ( str ( {err} ) )"],
        "try_print": [f"print ( {err} )"],
        "try_log": [f"logging . error ( {err} )", "return None"],
    }[spec.guard]
    needs = {"try_jsonify": "from flask import jsonify", "try_log": "import logging"}
    if spec.guard in needs:
        fn.imports.add(needs[spec.guard])
    fn.body = [(0, "try :")] + [(d + 1, line) for d, line in fn.body] + [(0, f"except Exception as {err} :")]
    fn.add(*handler, depth=1)


def _function_name(spec: Spec, rng: random.Random) -> str:
    singular = SCHEMA[spec.table][0]
    verb = rng.choice(WRITE_VERBS.get(spec.kind, FUNCTION_VERBS))
    noun = rng.choice((spec.table, singular, singular))
    if spec.conditions and rng.random() < 0.25:
        noun += f"_by_{spec.conditions[0][0]}"
    if rng.random() < 0.15:
        return verb + "".join(part.capitalize() for part in noun.split("_"))
    return f"{verb}_{noun}"


def render_code(spec: Spec, rng: random.Random) -> str:
    """The function for ``spec``; ``rng`` picks only what the description leaves open."""
    params = (spec.conn_arg,) + spec.args
    fn = _Function(names=set(params) | {spec.table}, rng=rng)
    on = _connect(spec, fn)
    result = _execute(spec, fn, on)
    _post(spec, fn, result, on)
    _guard(spec, fn)
    header = f"def {_function_name(spec, rng)} ( {' , '.join(params)} ) :"
    imports = [line for line in IMPORT_ORDER if line in fn.imports]
    return "\n".join(imports + [header] + [INDENT * (depth + 1) + line for depth, line in fn.body])
