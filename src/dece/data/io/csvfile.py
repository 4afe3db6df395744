"""CSV with a header row (Lyra's format): multi-line quoted fields, configurable column names, and an
optional ``meta`` column holding each row's meta as JSON."""

from __future__ import annotations

import csv
import io
from typing import Iterable

from dece.data.io.common import (
    PathLike,
    atomic_write,
    data_error,
    default_id_prefix,
    dump_meta,
    parse_meta,
    read_text,
    row_meta,
)
from dece.data.records import Example
from dece.errors import DataError


def read_csv(
    path: PathLike,
    src_col: str = "src",
    tgt_col: str = "tgt",
    *,
    meta_col: str = "meta",
    id_prefix: str | None = None,
) -> list[Example]:
    """Rows of a CSV file with a header. ``meta_col``, when present, is read back as JSON; other columns
    are ignored. Blank lines are skipped. Row ``i`` (0-based) gets ``meta["id"] = f"{id_prefix}-{i}"``
    unless its stored meta has one. Errors name the 1-based data row and the line it starts on."""
    prefix = default_id_prefix(path) if id_prefix is None else id_prefix
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as err:
        raise data_error(path, "0 (header)", "*", f"bad CSV: {err}") from None
    if header is None:
        raise data_error(path, "0 (header)", src_col, "missing: the file is empty")
    for col in (src_col, tgt_col):
        if col not in header:
            raise data_error(path, "0 (header)", col, f"missing column; columns are {header}")
    i_src, i_tgt = header.index(src_col), header.index(tgt_col)
    i_meta = header.index(meta_col) if meta_col in header else None

    examples: list[Example] = []
    line = reader.line_num
    while True:
        start = line + 1
        try:
            record = next(reader, None)
        except csv.Error as err:
            raise DataError(f"{path}: row {len(examples) + 1} (line {start}): bad CSV: {err}") from None
        line = reader.line_num
        if record is None:
            return examples
        if not record:
            continue
        row = f"{len(examples) + 1} (line {start})"
        if len(record) != len(header):
            field = header[len(record)] if len(record) < len(header) else f"#{len(record)}"
            raise data_error(path, row, field, f"expected {len(header)} fields, got {len(record)}")
        meta = parse_meta(record[i_meta], path, row, meta_col) if i_meta is not None else {}
        examples.append(Example(record[i_src], record[i_tgt], row_meta(prefix, len(examples), meta)))


def write_csv(
    examples: Iterable[Example],
    path: PathLike,
    src_col: str = "src",
    tgt_col: str = "tgt",
    *,
    meta_col: str | None = "meta",
) -> None:
    """Write a header and one row per example (atomically); ``meta`` goes to ``meta_col`` as JSON
    unless ``meta_col`` is None. Lines end with ``\\n`` as in Lyra; fields are quoted only when needed
    (a row holding a bare ``\\r``, which the csv module would not quote, is quoted in full)."""
    with atomic_write(path) as handle:
        minimal = csv.writer(handle, lineterminator="\n")
        quoted = csv.writer(handle, lineterminator="\n", quoting=csv.QUOTE_ALL)
        minimal.writerow([src_col, tgt_col] + ([meta_col] if meta_col else []))
        for ex in examples:
            fields = [ex.src, ex.tgt] + ([dump_meta(ex.meta)] if meta_col else [])
            (quoted if any("\r" in f for f in fields) else minimal).writerow(fields)
