"""A code-repair pretraining corpus from the Python every machine has after `make install`, for code-to-code
tasks such as Bugs2Fix (Tufano et al., "An Empirical Study on Learning Bug-Fixing Patches in the Wild via
Neural Machine Translation", TOSEM 2019).

Each function of the installed Python is *abstracted* as Bugs2Fix abstracts Java: identifiers become
``VAR_i`` / ``METHOD_i`` (called or defined) / ``TYPE_i`` (capitalised), one id per name, literals ``STRING_i``
/ ``INT_i`` / ``FLOAT_i``, numbered per function in order of appearance; keywords, builtins and ``0`` / ``1``
stay (the idioms); ``True`` / ``False`` / ``None`` / ``self`` are written ``true`` / ``false`` / ``null`` /
``this``; tokens are space-separated, a statement ends with ``;`` and a block is braced (``if x { ... }``: no
``:``). A row pairs a copy of the function with one small edit (:data:`EDITS`: a token deleted, repeated or
swapped with the next, a statement dropped or repeated, a comparison or arithmetic operator changed, or no
edit) as the source with the function as the target. A model pretrained on it learns to copy code and undo
small edits: what a code-repair fine-tuning needs and what a tiny model trained from scratch on Bugs2Fix does
not learn (docs/results/paper-tasks.md).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import keyword
import random
import tokenize
from pathlib import Path
from typing import Callable

from dece.data.python_functions import bare_functions, installed_python_files, shuffled_sources, sources_fingerprint
from dece.data.records import Example

#: bumped whenever the abstraction or the edits change, so that rows kept on disk are mined anew
REPAIR_VERSION = 2
#: functions kept: this many abstract tokens at least and at most (Bugs2Fix-small: up to 50, -medium: 50-100)
MIN_TOKENS, MAX_TOKENS = 10, 100
#: names kept as they are (the idioms): keywords (soft ones too: ``match``, ``case``, ``_``), builtins
IDIOMS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
#: Python names written as their Java counterparts
RENAMED = {"True": "true", "False": "false", "None": "null", "self": "this"}
#: operators an ``operator`` edit swaps among (within one group)
OPERATOR_GROUPS = (("==", "!=", "<", ">", "<=", ">="), ("+", "-", "*", "/"), ("and", "or"))
_SKIPPED = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
#: Python 3.12+ splits an f-string into these tokens (before, it is one STRING): written as one ``STRING_i``
_FSTRING = tuple(getattr(tokenize, name, -1) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END"))
_STRUCTURE = {tokenize.NEWLINE: ";", tokenize.INDENT: "{", tokenize.DEDENT: "}"}


def _fstrings_joined(tokens: list[tokenize.TokenInfo]) -> list[tokenize.TokenInfo]:
    """``tokens`` with each f-string (FSTRING_START ... FSTRING_END, Python 3.12+) as one STRING token."""
    out: list[tokenize.TokenInfo] = []
    depth, parts = 0, []
    for tok in tokens:
        if tok.type == _FSTRING[0]:
            depth += 1
        if depth:
            parts.append(tok.string)
            if tok.type == _FSTRING[2]:
                depth -= 1
                if not depth:
                    out.append(tok._replace(type=tokenize.STRING, string="".join(parts)))
                    parts = []
            continue
        out.append(tok)
    return out


def abstract_code(code: str) -> list[str] | None:
    """``code`` as Bugs2Fix-style abstract tokens (see the module's docstring), or None when it does not
    tokenize. Meant for code as :func:`ast.unparse` writes it (one statement a line, no comments): a one-line
    block (``def f(x): return x``) keeps its ``:``, and a docstring or decorator left in the code is written
    like any string or call. A name has one id wherever it stands: ``TYPE_i`` when capitalised, else
    ``METHOD_i`` when it is called or defined by ``def`` anywhere in ``code``, else ``VAR_i``."""
    try:
        tokens = _fstrings_joined([t for t in tokenize.generate_tokens(io.StringIO(code).readline)
                                   if t.type not in _SKIPPED])
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    methods = {tok.string for i, tok in enumerate(tokens) if tok.type == tokenize.NAME and (
        (i + 1 < len(tokens) and tokens[i + 1].string == "(") or (i and tokens[i - 1].string == "def"))}
    ids: dict[str, str] = {}
    counts: dict[str, int] = {}

    def ident(kind: str, text: str) -> str:
        if text not in ids:
            counts[kind] = counts.get(kind, 0) + 1
            ids[text] = f"{kind}_{counts[kind]}"
        return ids[text]

    out = []
    for i, tok in enumerate(tokens):
        text = tok.string
        if _opens_block(tokens, i):  # `if x:` NEWLINE INDENT is written `if x {`, as Java writes it
            continue
        if tok.type in _STRUCTURE:
            out.append(_STRUCTURE[tok.type])
        elif tok.type == tokenize.NAME:
            if text in RENAMED or text in IDIOMS:
                out.append(RENAMED.get(text, text))
            else:
                out.append(ident("TYPE" if text[:1].isupper() else "METHOD" if text in methods else "VAR", text))
        elif tok.type == tokenize.STRING:
            out.append(ident("STRING", text))
        elif tok.type == tokenize.NUMBER:
            out.append(text if text in ("0", "1") else ident("FLOAT" if any(c in text for c in ".eEjJ") else "INT", text))
        elif tok.type == tokenize.OP:
            out.append(text)
        else:  # an error token: not code the abstraction can write
            return None
    return out


def _opens_block(tokens: list[tokenize.TokenInfo], i: int) -> bool:
    """Whether ``tokens[i]`` is the ``:`` or the NEWLINE before an INDENT."""
    kinds = [t.type for t in tokens[i:i + 3]]
    return (kinds[:2] == [tokenize.NEWLINE, tokenize.INDENT]
            or (tokens[i].string == ":" and kinds[1:] == [tokenize.NEWLINE, tokenize.INDENT]))


def _statements(tokens: list[str]) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the simple statements (each up to and including its ``;``)."""
    spans, start = [], 0
    for i, tok in enumerate(tokens):
        if tok in ("{", "}"):
            start = i + 1
        elif tok == ";":
            spans.append((start, i + 1))
            start = i + 1
    return spans


def _delete(tokens: list[str], rng: random.Random) -> list[str] | None:
    if not tokens:
        return None
    i = rng.randrange(len(tokens))
    return tokens[:i] + tokens[i + 1:]


def _repeat(tokens: list[str], rng: random.Random) -> list[str] | None:
    if not tokens:
        return None
    i = rng.randrange(len(tokens))
    return tokens[:i + 1] + tokens[i:]


def _swap(tokens: list[str], rng: random.Random) -> list[str] | None:
    if len(tokens) < 2:
        return None
    i = rng.randrange(len(tokens) - 1)
    return None if tokens[i] == tokens[i + 1] else tokens[:i] + [tokens[i + 1], tokens[i]] + tokens[i + 2:]


def _drop_statement(tokens: list[str], rng: random.Random) -> list[str] | None:
    spans = _statements(tokens)
    if len(spans) < 2:  # the only statement: nothing would be left to repair from
        return None
    start, end = rng.choice(spans)
    return tokens[:start] + tokens[end:]


def _repeat_statement(tokens: list[str], rng: random.Random) -> list[str] | None:
    spans = _statements(tokens)
    if not spans:
        return None
    start, end = rng.choice(spans)
    return tokens[:end] + tokens[start:end] + tokens[end:]


_GROUP_OF = {op: group for group in OPERATOR_GROUPS for op in group}


def _operator(tokens: list[str], rng: random.Random) -> list[str] | None:
    where = [i for i, tok in enumerate(tokens) if tok in _GROUP_OF]
    if not where:
        return None
    i = rng.choice(where)
    other = rng.choice([op for op in _GROUP_OF[tokens[i]] if op != tokens[i]])
    return tokens[:i] + [other] + tokens[i + 1:]


#: the edits a source may carry, drawn uniformly per row; ``edit(tokens, rng)`` is None where it cannot apply
#: (the row then keeps no edit)
EDITS: dict[str, Callable[[list[str], random.Random], list[str] | None]] = {
    "none": lambda tokens, rng: list(tokens),
    "delete_token": _delete, "repeat_token": _repeat, "swap_tokens": _swap,
    "drop_statement": _drop_statement, "repeat_statement": _repeat_statement, "change_operator": _operator,
}


_EDIT_NAMES = sorted(EDITS)


def corrupt(tokens: list[str], rng: random.Random) -> tuple[str, list[str]]:
    """One edit drawn from :data:`EDITS` with ``rng`` and applied to ``tokens``.

    Returns:
        ``(edit name, edited tokens)``; ``("none", tokens)`` when the drawn edit cannot apply.
    """
    name = rng.choice(_EDIT_NAMES)
    edited = EDITS[name](tokens, rng)
    return (name, edited) if edited is not None else ("none", list(tokens))


def repair_rows(n: int, seed: int, keep=lambda row: True, files: list[Path] | None = None) -> list[Example]:
    """``n`` distinct (edited function -> function) rows from the functions of ``files`` (default: the installed
    Python), read in an order drawn with ``seed``, abstracted (:func:`abstract_code`; functions of
    :data:`MIN_TOKENS` to :data:`MAX_TOKENS` tokens), each edited with a generator seeded by ``seed`` and
    accepted by ``keep`` (the caller's leak guard). Ids are ``"pyrepair-i"``, ``meta["edit"]`` the edit's name.

    Args:
        n: rows wanted (fewer when the files hold fewer functions).
        seed: the order the files are read in and the edits drawn.
        keep: ``Example -> bool``; a row it refuses is skipped.
        files: the Python files to mine.

    Returns:
        The rows, ``src`` the edited abstract function, ``tgt`` the abstract function, both space-separated.
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[Example] = []
    if n <= 0:
        return rows
    for source in shuffled_sources(installed_python_files() if files is None else files, seed):
        for bare, _ in bare_functions(source):
            try:
                tokens = abstract_code(ast.unparse(bare))
            except (ValueError, TypeError, RecursionError):  # an AST the unparser cannot write back
                continue
            if tokens is None or not MIN_TOKENS <= len(tokens) <= MAX_TOKENS:
                continue
            target = " ".join(tokens)
            if target in seen:
                continue
            seen.add(target)
            name, edited = corrupt(tokens, rng)
            row = Example(" ".join(edited), target, {"id": f"pyrepair-{len(rows)}", "edit": name})
            if keep(row):
                rows.append(row)
                if len(rows) == n:
                    return rows
    return rows


def repair_sources_fingerprint() -> str:
    """:func:`~dece.data.python_functions.sources_fingerprint` of the installed Python with
    :data:`REPAIR_VERSION`: it changes when a package or the abstraction changes."""
    return hashlib.sha256(f"python_repair {REPAIR_VERSION} {sources_fingerprint()}".encode()).hexdigest()
