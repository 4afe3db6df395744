"""Line-aligned pairs: line i of the source file and line i of the target file make row i
(Bugs2Fix ``*.buggy`` / ``*.fixed``, code-docstring ``declbodies`` / ``descriptions``).
Meta, which has no place in such files, can travel in a third line-aligned JSON-lines file."""

from __future__ import annotations

from typing import Any, Iterable

from dece.data.io.common import (
    PathLike,
    atomic_write,
    data_error,
    default_id_prefix,
    dump_meta,
    parse_meta,
    read_text,
    row_meta,
    split_lines,
)
from dece.data.records import Example


def _aligned(paths: list[PathLike], fields: list[str]) -> list[list[str]]:
    """The lines of each file, checked to be equally many."""
    columns = [split_lines(read_text(path)) for path in paths]
    counts = [len(lines) for lines in columns]
    if len(set(counts)) > 1:
        short = counts.index(min(counts))
        listing = ", ".join(f"{path} has {n}" for path, n in zip(paths, counts))
        raise data_error(paths[short], min(counts) + 1, fields[short], f"missing: line counts differ ({listing})")
    return columns


def read_pairs(
    src_path: PathLike,
    tgt_path: PathLike,
    *,
    meta_path: PathLike | None = None,
    id_prefix: str | None = None,
) -> list[Example]:
    """Examples from two line-aligned files (and, if given, a line-aligned JSON-lines meta file).
    Ids default to ``f"{prefix}-{i}"`` with the prefix taken from ``src_path``'s name."""
    prefix = default_id_prefix(src_path) if id_prefix is None else id_prefix
    paths: list[PathLike] = [src_path, tgt_path] + ([meta_path] if meta_path is not None else [])
    columns = _aligned(paths, ["src", "tgt", "meta"][: len(paths)])
    metas: list[dict[str, Any]] = (
        [parse_meta(text, meta_path, i + 1) for i, text in enumerate(columns[2])]
        if meta_path is not None
        else [{}] * len(columns[0])
    )
    return [
        Example(src, tgt, row_meta(prefix, i, meta))
        for i, (src, tgt, meta) in enumerate(zip(columns[0], columns[1], metas))
    ]


def write_pairs(
    examples: Iterable[Example],
    src_path: PathLike,
    tgt_path: PathLike,
    *,
    meta_path: PathLike | None = None,
) -> None:
    """Write sources and targets one per line (and meta as JSON lines to ``meta_path`` if given).
    A field holding a line break cannot be written this way and raises :class:`DataError`."""
    rows = list(examples)
    for i, ex in enumerate(rows, start=1):
        for field, value, path in (("src", ex.src, src_path), ("tgt", ex.tgt, tgt_path)):
            if "\n" in value or "\r" in value:
                raise data_error(path, i, field, "contains a line break; use CSV or JSONL for multi-line fields")
    targets: list[tuple[PathLike, list[str]]] = [
        (src_path, [ex.src for ex in rows]),
        (tgt_path, [ex.tgt for ex in rows]),
    ]
    if meta_path is not None:
        targets.append((meta_path, [dump_meta(ex.meta) for ex in rows]))
    for path, lines in targets:
        with atomic_write(path) as handle:
            handle.writelines(line + "\n" for line in lines)
