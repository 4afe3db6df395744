"""Real Python code that every machine has after `make install`: the (function -> docstring) pairs of the
installed packages and the standard library, written in the encoding of the code-docstring-corpus (Barone
and Sennrich, 2017): the function without its docstring, one line per ``DCNL``, one ``DCSP`` per indentation
level; the docstring quoted, its lines joined by ``DCNL``. A pretraining corpus for Python tasks
(:mod:`dece.data.pretraining`); which rows it holds depends on the packages installed, so its digest keys the
cached base."""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import random
import sysconfig
from pathlib import Path
from typing import Iterator

from dece.data.records import Example

#: longest function (in characters of its encoded code) and docstring kept: longer ones would be cut anyway
MAX_CODE_CHARS = 2000
MAX_DOC_CHARS = 400
#: the version of the encoding below; part of :func:`sources_fingerprint`, so rows kept on disk by an older
#: encoding are mined anew (2: spaces in string literals, nested docstrings and quotes as the corpus writes them)
ENCODING_VERSION = 2


def encode_code(code: str) -> str:
    """``code`` (a function, 4-space or tab indentation) in the code-docstring-corpus encoding, spacing
    included: lines joined by `` DCNL `` (the first body line by ``DCNL`` and two spaces, where the corpus
    dropped the docstring), each indentation level a ``DCSP``, levels two spaces apart; blank lines dropped."""
    out = []
    for line in code.expandtabs(4).splitlines():
        text = line.strip()
        if text:
            level = (len(line) - len(line.lstrip(" "))) // 4
            out.append("  ".join(["DCSP"] * level) + " " + text if level else text)
    return " DCNL  ".join(out[:2]) + "".join(f" DCNL {line}" for line in out[2:])


def encode_docstring(doc: str) -> str:
    """A cleaned docstring's non-blank lines joined by `` DCNL ``, in single quotes, backslashes and single
    quotes escaped (``what\\'s``), other characters as they are (as the corpus writes them)."""
    text = " DCNL ".join(line.strip() for line in doc.splitlines() if line.strip())
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _SpacedStrings(ast.NodeTransformer):
    """Every space inside a string literal written `` DCSP `` (the corpus's ``'Should DCSP have DCSP version'``)."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, str):
            node.value = node.value.replace(" ", " DCSP ")
        return node


class _CorpusUnparser(ast._Unparser):  # ast.unparse's own writer (private, unchanged since Python 3.9)
    """:func:`ast.unparse`, a nested docstring written as any other string literal (``'Update DCSP all'``, one
    line), as the corpus writes it, not triple-quoted over several lines."""

    def get_raw_docstring(self, node: ast.AST) -> None:
        return None


def bare_functions(source: str | bytes) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str | None]]:
    """Every function of ``source`` (outer ones before those nested in them) without its docstring and
    decorators, with its cleaned docstring (None when it has none); a function with nothing but a docstring is
    left out. Bytes are decoded as Python does (a BOM, a coding line: PEP 263). Source that does not parse (or
    nests too deep for the parser) gives none."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node, clean=True)
        body = node.body[1:] if doc is not None else node.body
        if body:
            bare = copy.copy(node)  # the nodes below are shared with the tree: callers copy before changing them
            bare.body, bare.decorator_list = body, []
            yield bare, doc


def function_pairs(source: str | bytes) -> list[tuple[str, str]]:
    """``(encoded function without its docstring, encoded docstring)`` for every function of ``source`` that
    has a (non-blank) docstring and a body besides it (spaces inside its string literals written ``DCSP``),
    as :func:`bare_functions` finds them; functions or docstrings longer than :data:`MAX_CODE_CHARS` /
    :data:`MAX_DOC_CHARS` are left out."""
    pairs = []
    for bare, doc in bare_functions(source):
        if not doc or not doc.strip():
            continue
        try:
            code = encode_code(_CorpusUnparser().visit(_SpacedStrings().visit(copy.deepcopy(bare))))
        except (ValueError, TypeError, RecursionError):  # an AST the unparser cannot write back
            continue
        text = encode_docstring(inspect.cleandoc(doc))
        if len(code) <= MAX_CODE_CHARS and len(text) <= MAX_DOC_CHARS:
            pairs.append((code, text))
    return pairs


def installed_python_files() -> list[Path]:
    """The ``.py`` files of this interpreter's standard library and of its environment's installed packages,
    sorted (the standard library's own ``site-packages`` left out: a different environment's packages)."""
    paths = sysconfig.get_paths()
    stdlib, purelib = Path(paths["stdlib"]), Path(paths["purelib"])
    files = {p for p in purelib.rglob("*.py")}
    files |= {p for p in stdlib.rglob("*.py") if "site-packages" not in p.relative_to(stdlib).parts}
    return sorted(files)


def sources_fingerprint(files: list[Path] | None = None) -> str:
    """A SHA-256 over :data:`ENCODING_VERSION` and the paths, sizes and modification times of ``files``
    (default: :func:`installed_python_files`): it changes when a package is installed, removed or upgraded, or
    the encoding changes (and so the rows mined from them may change)."""
    digest = hashlib.sha256(f"encoding {ENCODING_VERSION}\n".encode())
    for path in installed_python_files() if files is None else files:
        try:
            st = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def shuffled_sources(files: list[Path], seed: int) -> Iterator[bytes]:
    """The contents of ``files`` in an order drawn with ``seed`` (unreadable files skipped), as bytes: the
    parser decodes them as Python does (a BOM, a coding line)."""
    order = list(files)
    random.Random(seed).shuffle(order)
    for path in order:
        try:
            yield path.read_bytes()
        except OSError:
            continue


def python_function_rows(n: int, seed: int, keep=lambda row: True, files: list[Path] | None = None) -> list[Example]:
    """``n`` distinct (function -> docstring) rows mined from ``files`` (default: :func:`installed_python_files`),
    read in an order drawn with ``seed``, each accepted by ``keep`` (the caller's leak guard). Ids are
    ``"pyfunc-i"``. Fewer than ``n`` when the files hold fewer.

    Args:
        n: rows wanted.
        seed: the order the files are read in (and so which functions are taken).
        keep: ``Example -> bool``; a row it refuses is skipped.
        files: the Python files to mine.

    Returns:
        The rows, ``src`` the encoded function, ``tgt`` its encoded docstring.
    """
    seen: set[tuple[str, str]] = set()
    rows: list[Example] = []
    if n <= 0:
        return rows
    pairs = (pair for source in shuffled_sources(installed_python_files() if files is None else files, seed)
             for pair in function_pairs(source))
    for code, doc in pairs:
        if (code, doc) in seen:
            continue
        seen.add((code, doc))
        row = Example(code, doc, {"id": f"pyfunc-{len(rows)}"})
        if keep(row):
            rows.append(row)
            if len(rows) == n:
                break
    return rows
