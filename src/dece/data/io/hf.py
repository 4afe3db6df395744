"""Datasets the ecosystem's way: anything :func:`datasets.load_dataset` or :func:`datasets.load_from_disk`
reads (a hub name when online, a local folder or file of parquet / arrow / JSON / JSON lines / CSV, a
``save_to_disk`` folder), with the dataset's own field names mapped onto ``src`` / ``tgt``.

    read_hf("json", "train", data_files="data/{split}.json", src_field="question", tgt_field="snippet")
    read_hf("path/to/saved", "test", src_field="code_tokens", tgt_field="docstring", join_tokens=True)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from dece.data.records import Example
from dece.errors import DataError

#: file extension -> the ``datasets`` builder that reads it
BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def _is_saved(path: Path) -> bool:
    return path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())


def _load(path: str, split: str, name: str | None, data_files: Any) -> Any:
    import datasets

    datasets.disable_progress_bars()
    local = Path(path)
    if _is_saved(local):
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DataError(f"{path}: no split {split!r}; its splits: {', '.join(loaded)}")
            return loaded[split]
        return loaded
    builder, kwargs = path, {}
    if data_files is not None:
        files = {split: str(data_files).replace("{split}", split)} if isinstance(data_files, str) else dict(data_files)
        kwargs["data_files"] = files
    elif local.is_file():  # one file: its builder by extension, the file as the requested split
        builder, kwargs["data_files"] = BUILDERS.get(local.suffix, "json"), {split: str(local)}
    logger = logging.getLogger("datasets")  # its builders log a failure before raising it: ours says it once
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return datasets.load_dataset(builder, name, split=split, **kwargs)
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError,
            datasets.exceptions.DatasetGenerationError) as err:
        where = ", ".join(map(str, kwargs["data_files"].values())) if "data_files" in kwargs else f"dataset {path!r}"
        if isinstance(err, datasets.exceptions.DatasetGenerationError) and err.__cause__ is not None:
            err = err.__cause__  # the reader's own words (a damaged page, a truncated JSON array...)
        problem = "no rows (the file is empty)" if "corresponds to no data" in str(err) else str(err).splitlines()[0]
        raise DataError(f"{where}, split {split!r}: {problem}") from None
    finally:
        logger.setLevel(level)


def _meta(row: Mapping[str, Any], index: int, split: str, id_field: str | None) -> dict[str, Any]:
    """``meta`` kept by :func:`write_hf` (a JSON text column), and the row id."""
    meta: dict[str, Any] = {}
    if isinstance(row.get("meta"), str) and row["meta"]:
        try:
            meta = json.loads(row["meta"])
        except json.JSONDecodeError:
            meta = {}
    if id_field is not None and id_field in row:
        meta["id"] = str(row[id_field])
    meta.setdefault("id", f"{split}-{index}")
    return meta


def _field(row: Mapping[str, Any], field: str, where: str, index: int, join_tokens: bool) -> str:
    if field not in row:
        raise DataError(f"{where}, row {index + 1}, field {field!r}: missing; the rows have: {', '.join(row)}")
    value = row[field]
    if join_tokens and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    if value is None:
        raise DataError(f"{where}, row {index + 1}, field {field!r}: missing (null); the row has: "
                        f"{', '.join(k for k, v in row.items() if v is not None)}")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        hint = " (a token list: set join_tokens = true)" if isinstance(value, (list, tuple)) else ""
        raise DataError(f"{where}, row {index + 1}, field {field!r}: expected text, got {type(value).__name__}{hint}")
    return str(value)  # an integer label (classification) becomes its text, as the other readers give it


def read_hf(path: str, split: str, *, src_field: str = "src", tgt_field: str = "tgt", name: str | None = None,
            data_files: str | Mapping[str, str] | None = None, id_field: str | None = None,
            join_tokens: bool = False, label_field: str | None = None) -> list[Example]:
    """The rows of ``split`` as examples.

    Args:
        path: a ``load_dataset`` path (hub name, builder name such as ``"json"``, local folder or file) or a
            ``save_to_disk`` folder.
        split: the split to read.
        src_field, tgt_field: the fields that become ``src`` and ``tgt`` (an integer label becomes its text).
        name: the dataset's configuration name, if it has several.
        data_files: with a builder name: the files, ``{split}`` standing for the split, or split -> path.
        id_field: a field whose value becomes ``meta["id"]`` (default ``f"{split}-{i}"``).
        join_tokens: join a field holding a list of tokens with single spaces (CodeXGLUE's ``code_tokens``).
        label_field: for classification (``task = "classification"``): the label field, used as the target
            (its text: ``1`` -> ``"1"``); replaces ``tgt_field``.

    Returns:
        One :class:`Example` per row, in the dataset's order; ``meta`` keeps ``id``.

    Raises:
        DataError: the dataset or split cannot be read (names the file), or a row lacks a field (names
            the row, counted from 1, and the fields it has) or holds something other than text.
    """
    rows = _load(path, split, name, data_files)
    tgt_field = label_field if label_field is not None else tgt_field
    files = data_files.get(split) if isinstance(data_files, Mapping) else data_files
    where = (f"{str(files).replace('{split}', split)}" if files is not None else f"dataset {path!r}") + f", split {split!r}"
    out = []
    for i, row in enumerate(rows):
        src = _field(row, src_field, where, i, join_tokens)
        tgt = _field(row, tgt_field, where, i, join_tokens)
        out.append(Example(src, tgt, _meta(row, i, split, id_field)))
    return out


def write_hf(examples: Sequence[Example], path: str | Path, kind: str, *, src_field: str = "src",
             tgt_field: str = "tgt") -> None:
    """Write ``examples`` with the ``datasets`` library: ``kind`` ``"parquet"`` or ``"json"`` (a file), or
    ``"folder"`` (``save_to_disk``); columns ``src_field``, ``tgt_field`` and ``meta`` (JSON text, read back by
    :func:`read_hf`). A file is written to a temporary name and renamed; a folder appears when complete.

    Raises:
        ValueError: an unknown ``kind``.
    """
    import datasets

    from dece.data.io.common import atomic_dir, atomic_write

    table = datasets.Dataset.from_list([{src_field: e.src, tgt_field: e.tgt, "meta": json.dumps(e.meta, ensure_ascii=False)}
                                        for e in examples])
    if kind == "folder":
        with atomic_dir(Path(path)) as tmp:
            table.save_to_disk(str(tmp))
        return
    with atomic_write(path, binary=True) as handle:
        if kind == "parquet":
            table.to_parquet(handle)
        elif kind == "json":
            handle.write(json.dumps([table[i] for i in range(len(table))], ensure_ascii=False, indent=1).encode())
        else:
            raise ValueError(f"unknown kind {kind!r}")
