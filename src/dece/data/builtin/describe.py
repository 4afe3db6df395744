"""The English description of a :class:`Spec`, in the manner of Lyra: step by step, parameters
written as ``$name$``. Phrasings are drawn from a seeded ``random.Random``; every description starts
with a plain imperative or a prepositional phrase (never a subordinate clause, which the ``grammar``
attack uses as its trigger)."""

from __future__ import annotations

import random

from dece.data.builtin.spec import Spec
from dece.data.builtin.vocab import SCHEMA

CONN_PHRASES: dict[str, tuple[str, ...]] = {
    "text": ("Use {c} to", "Through {c},", "With the {c} connection,", "Using {c},", "Use the {c} connection to"),
    "engine": ("Connect to the database through {c} and", "Get a connection from {c} and",
               "Use {c} to open a connection, then"),
    "url": ("Create the database engine from {c}, connect to it and",
            "Get the database engine via {c}, establish a connection and", "Connect to the database at {c} and"),
    "dbapi": ("Create a cursor from {c} and", "Use the cursor of {c} to", "Open a cursor with {c} and"),
}
TRY_PREFIXABLE = ("Use ", "Connect ", "Get ", "Create ", "Open ")
VERBS = ("query", "get", "select", "find")
ALL_COLUMNS = ("all columns", "all the columns", "all the information", "every column")
COUNT = ("the number of rows", "the count of all records", "the number of entries")
FETCH = {
    "all": ("get all the data", "fetch all rows", "get all the query results", "obtain every row"),
    "one": ("get the first piece of data", "fetch the first row", "get one row", "obtain the first result"),
}
CLOSE = (", close the cursor", ", then close the cursor")
POST: dict[str, tuple[str, ...]] = {
    "return": ("return the query results", "return the result", "return it"),
    "print_loop": ("use a for loop to print each row", "print every item of the query results in a for loop",
                   "iterate through the query results and print them"),
    "print_return": ("print the query results and return them", "print the result, then return it"),
    "jsonify": ("return the query results in jsonify form", "return them through jsonify"),
    "dicts": ("convert each row to a dictionary and return the list", "return a list with every row as a dict"),
    "first_col": ("return a list of the 0th element of each row",
                  "collect the first element of every row into a list and return it"),
    "empty_none": ("return None if there is no result, otherwise return the query results",
                   "if the result is empty return None, else return it"),
    "empty_false": ("return False if there is no result, otherwise return the query results",
                    "if the result is empty return False, else return it"),
    "count": ("return the number of rows obtained", "return the length of the query results"),
    "render": ('render "{page}" with {kw} set to the query results and return it',
               'return the rendered "{page}" page, where the {kw} parameter is the query result'),
    "loop_dict": ("store the 0th element of each row as key and the 1st element as value in a dictionary, "
                  "and return the dictionary",),
    "index0": ("return its 0th element", "return the 0th element of the result"),
    "key": ('return the "{col}" item of the query result', 'return the value of "{col}" in the result'),
    "none": ("",),
    "commit": ("commit the change", "commit the transaction"),
    "rowcount": ("return the number of affected rows", "return the row count of the execution"),
}
GUARD: dict[str, tuple[str, ...]] = {
    "none": ("",),
    "try_jsonify": ("If an Exception occurs, return the exception information as a string with jsonify.",
                    "Return the string form of any Exception through jsonify."),
    "try_print": ("If an Exception occurs, print it.", "Print the Exception if one is raised."),
    "try_log": ("If an Exception occurs, log it with logging.error and return None.",
                "Log any Exception through logging.error and return None."),
}


def render_kwarg(spec: Spec) -> str:
    """The keyword a rendered template receives the rows under (stated in the description)."""
    return SCHEMA[spec.table][0] if spec.fetch == "one" else spec.table


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _var(name: str) -> str:
    return f"${name}$"


def _conditions(spec: Spec, rng: random.Random) -> str:
    conds = spec.conditions
    if not conds:
        return ""
    if all(col == arg for col, arg in conds) and rng.random() < 0.3:
        return " based on " + " and ".join(_var(arg) for _, arg in conds)
    joiner, form = rng.choice(((" where ", "{col} is {arg}"), (" with ", "{col} as {arg}"),
                               (" whose ", "{col} is {arg}"), (" where ", "{col} equals {arg}")))
    return joiner + " and ".join(form.format(col=col, arg=_var(arg)) for col, arg in conds)


def _columns(spec: Spec, rng: random.Random) -> str:
    if spec.count:
        return rng.choice(COUNT)
    cols = spec.columns
    if not cols:
        return rng.choice(ALL_COLUMNS)
    if len(cols) == 1:
        return rng.choice(("the {0}", "{0}", "the {0} column")).format(*cols)
    return rng.choice(("{0} and {1}", "the {0} and {1} columns")).format(*cols)


def _table(spec: Spec, rng: random.Random) -> str:
    if spec.kind == "expression":
        return f" in the {_var(spec.table)} table"
    return rng.choice((" in the {t} table", " in {t}", " from the {t} table", " from {t}")).format(t=spec.table)


def query_phrase(spec: Spec, rng: random.Random) -> str:
    """What the statement does, as an imperative verb phrase."""
    where = _conditions(spec, rng)
    if spec.kind == "delete":
        return rng.choice(("delete the rows in the {t} table", "remove the {t} records")).format(t=spec.table) + where
    if spec.kind == "update":
        (col, arg), = spec.values
        return rng.choice(("update the {c} in the {t} table to {a}", "set {c} to {a} in {t}")).format(
            c=col, t=spec.table, a=_var(arg)) + where
    if spec.kind == "insert":
        cols = " and ".join(", ".join(c for c, _ in spec.values).rsplit(", ", 1))
        args = " and ".join(", ".join(_var(a) for _, a in spec.values).rsplit(", ", 1))
        return rng.choice(("insert {a} into the {c} columns of the {t} table", "add a row to {t} with {c} set to {a}")
                          ).format(a=args, c=cols, t=spec.table)
    phrase = f"{rng.choice(VERBS)} {_columns(spec, rng)}{_table(spec, rng)}{where}"
    if spec.order_by:
        phrase += rng.choice((", ordered by {0}", " sorted by {0}")).format(spec.order_by)
    if spec.limit:
        phrase += rng.choice((" ( at most {0} rows )", ", limited to {0} rows")).format(spec.limit)
    return phrase


def _conn(spec: Spec, rng: random.Random) -> str:
    phrase = rng.choice(CONN_PHRASES[spec.access]).format(c=_var(spec.conn_arg))
    if spec.guard != "none" and phrase.startswith(TRY_PREFIXABLE) and rng.random() < 0.5:
        phrase = "Try to " + phrase[0].lower() + phrase[1:]
    return phrase


def _steps(spec: Spec, rng: random.Random) -> tuple[str, str]:
    """(fetch [+ close] phrase, post phrase); either may be empty."""
    fetch = rng.choice(FETCH[spec.fetch]) if spec.fetch else ""
    if spec.close:
        fetch += rng.choice(CLOSE)
    col = spec.columns[0] if spec.columns else ""
    post = rng.choice(POST[spec.post]).format(page=spec.page, kw=render_kwarg(spec), col=col)
    return fetch, post


def _join(*phrases: str) -> str:
    """'a, b, and c' over the non-empty phrases ('' when all are empty)."""
    parts = [p for p in phrases if p]
    return ", ".join(parts[:-1]) + ", and " + parts[-1] if len(parts) > 1 else "".join(parts)


def _then(head: str, sep: str, tail: str) -> str:
    """``head`` + ``sep`` + ``tail`` + '.', or ``head`` + '.' when there is no tail."""
    return f"{head}{sep}{tail}." if tail else f"{head}."


def describe(spec: Spec, rng: random.Random) -> str:
    """The description of ``spec``: one to three sentences."""
    conn, query = _conn(spec, rng), query_phrase(spec, rng)
    fetch, post = _steps(spec, rng)
    frame = rng.randrange(2)
    if spec.kind == "expression" and frame:
        text = f"{conn} execute the Python expression ( {query} ) and {fetch}. {cap(post)}."
    elif spec.kind == "expression":
        text = f"Build a Python expression to {query}. " + _then(f"{conn} execute it", ", ", _join(fetch, post))
    elif spec.sql_var and frame:
        text = f"Set the SQL statement: {cap(query)}. " + _then(f"{conn} execute the SQL", ", ", _join(fetch, post))
    elif spec.sql_var:
        text = f"Write the SQL to {query}. " + _then(f"{conn} run it", " and ", _join(fetch, post))
    elif frame:
        text = f"{conn} {_join(query, fetch, post)}."
    else:
        text = _then(f"{conn} execute SQL ( {query} )", " and ", fetch) + (f" {cap(post)}." if post else "")
    guard = rng.choice(GUARD[spec.guard])
    return f"{text} {guard}" if guard else text
