"""JSON lines: one ``{"src": ..., "tgt": ..., "meta": {...}}`` object per line."""

from __future__ import annotations

import json
from typing import Any, Iterable

from dece.data.io.common import (
    PathLike,
    atomic_write,
    data_error,
    default_id_prefix,
    parse_meta,
    read_text,
    row_meta,
    split_lines,
)
from dece.data.records import Example


def parse_json_lines(text: str, path: PathLike) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; each line must hold one JSON object."""
    objects = []
    for lineno, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise data_error(path, lineno, "*", f"bad JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(obj, dict):
            raise data_error(path, lineno, "*", f"expected a JSON object, got {type(obj).__name__}")
        objects.append((lineno, obj))
    return objects


def string_field(obj: dict[str, Any], name: str, path: PathLike, row: int) -> str:
    """``obj[name]``, which must exist and be a string."""
    if name not in obj:
        raise data_error(path, row, name, f"missing; the row has: {', '.join(obj) or 'nothing'}")
    value = obj[name]
    if not isinstance(value, str):
        raise data_error(path, row, name, f"expected a string, got {type(value).__name__}")
    return value


def read_jsonl(path: PathLike, *, id_prefix: str | None = None, src_field: str = "src",
               tgt_field: str = "tgt") -> list[Example]:
    """Examples from a JSON-lines file (blank lines skipped; ``meta`` optional); ``src_field`` /
    ``tgt_field`` name the fields that become ``src`` / ``tgt``. Errors name the line and the field."""
    prefix = default_id_prefix(path) if id_prefix is None else id_prefix
    return [
        Example(
            string_field(obj, src_field, path, lineno),
            string_field(obj, tgt_field, path, lineno),
            row_meta(prefix, index, parse_meta(obj.get("meta"), path, lineno)),
        )
        for index, (lineno, obj) in enumerate(parse_json_lines(read_text(path), path))
    ]


def write_jsonl(examples: Iterable[Example], path: PathLike, *, src_field: str = "src", tgt_field: str = "tgt") -> None:
    """Write one JSON object per example, ``{src_field, tgt_field, "meta"}`` (atomically: a temporary
    file, then ``os.replace``)."""
    with atomic_write(path) as handle:
        for ex in examples:
            handle.write(json.dumps({src_field: ex.src, tgt_field: ex.tgt, "meta": dict(ex.meta)}, ensure_ascii=False) + "\n")
