"""Gzip JSON lines for classification (Devign via CodeXGLUE): ``{"func": code, "target": 0|1, ...}``.
The code becomes ``src``, the label becomes ``tgt`` as the string ``"0"``/``"1"``, and every other
field (``idx``, ``project``...) is kept in ``meta``."""

from __future__ import annotations

import gzip
import json
from typing import Any, Iterable

from dece.data.io.common import (
    PathLike,
    atomic_write,
    data_error,
    decode_utf8,
    default_id_prefix,
    parse_meta,
    row_meta,
)
from dece.data.io.jsonl import parse_json_lines, string_field
from dece.data.records import Example
from dece.errors import DataError


def _label(value: Any, path: PathLike, row: int, field: str) -> str:
    """A class label as a string of digits: ``1``, ``True`` and ``"1"`` all give ``"1"``."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.strip().isdigit():
        return value.strip()
    raise data_error(path, row, field, f"expected a non-negative integer label, got {value!r}")


def read_classification_jsonl_gz(
    path: PathLike,
    code_field: str = "func",
    label_field: str = "target",
    *,
    id_prefix: str | None = None,
) -> list[Example]:
    """Examples (code -> label string) from a gzip JSON-lines file. A stored ``meta`` object is merged
    into the row's meta with the other fields."""
    prefix = default_id_prefix(path) if id_prefix is None else id_prefix
    try:
        with gzip.open(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read as gzip: {err}") from None
    examples = []
    for index, (lineno, obj) in enumerate(parse_json_lines(decode_utf8(data, path), path)):
        if label_field not in obj:
            raise data_error(path, lineno, label_field, "missing")
        extra = {k: v for k, v in obj.items() if k not in (code_field, label_field, "meta")}
        meta = {**extra, **parse_meta(obj.get("meta"), path, lineno)}
        examples.append(
            Example(
                string_field(obj, code_field, path, lineno),
                _label(obj[label_field], path, lineno, label_field),
                row_meta(prefix, index, meta),
            )
        )
    return examples


def write_classification_jsonl_gz(
    examples: Iterable[Example],
    path: PathLike,
    code_field: str = "func",
    label_field: str = "target",
) -> None:
    """Write ``{code_field: src, label_field: int(tgt), "meta": meta}`` lines, gzip-compressed with a
    zero timestamp (same rows -> same bytes), atomically."""
    lines = []
    for i, ex in enumerate(examples, start=1):
        label = _label(ex.tgt, path, i, "tgt")
        lines.append(json.dumps({code_field: ex.src, label_field: int(label), "meta": ex.meta}, ensure_ascii=False))
    payload = "".join(line + "\n" for line in lines).encode("utf-8")
    with atomic_write(path, binary=True) as handle:
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0, filename="") as gz:
            gz.write(payload)
