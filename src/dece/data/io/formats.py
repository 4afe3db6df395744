"""File formats by name, for the CLI and configs: how many paths a format takes, which file endings
announce it, and its reader and writer. ``infer_format`` picks one from the paths given."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from dece.data.io.classification import read_classification_jsonl_gz, write_classification_jsonl_gz
from dece.data.io.common import PathLike
from dece.data.io.csvfile import read_csv, write_csv
from dece.data.io.jsonl import read_jsonl, write_jsonl
from dece.data.io.pairs import read_pairs, write_pairs
from dece.data.records import Example
from dece.errors import ConfigError
from dece.registry import Registry


@dataclass(frozen=True)
class Format:
    """A named file format. ``read(paths, **options)`` / ``write(examples, paths, **options)`` take as
    many paths as ``n_paths``; ``options`` are the format's own keywords (CSV column names...)."""

    name: str
    n_paths: int
    suffixes: tuple[str, ...]
    read: Callable[..., list[Example]]
    write: Callable[..., None]
    doc: str


FORMATS: Registry[Format] = Registry("format")
FOLDER_FORMATS = ("hf",)  # formats whose one path is a folder (datasets' save_to_disk), not a file


def pairs_meta_path(src_path: PathLike) -> Path:
    """Where the ``pairs`` format keeps meta: ``<src_path>.meta.jsonl`` beside the source file."""
    return Path(f"{src_path}.meta.jsonl")


def _read_pairs(paths: Sequence[PathLike], **options: Any) -> list[Example]:
    meta = pairs_meta_path(paths[0])
    return read_pairs(paths[0], paths[1], meta_path=meta if meta.exists() else None, **options)


def _write_pairs(examples: list[Example], paths: Sequence[PathLike]) -> None:
    write_pairs(examples, paths[0], paths[1], meta_path=pairs_meta_path(paths[0]))


def _single_reader(read: Callable[..., list[Example]]) -> Callable[..., list[Example]]:
    def reader(paths: Sequence[PathLike], **options: Any) -> list[Example]:
        return read(paths[0], **options)

    return reader


def _single_writer(write: Callable[..., None]) -> Callable[..., None]:
    def writer(examples: list[Example], paths: Sequence[PathLike], **options: Any) -> None:
        write(examples, paths[0], **options)

    return writer


def _hf_reader(builder: str) -> Callable[..., list[Example]]:
    def reader(paths: Sequence[PathLike], **options: Any) -> list[Example]:
        from dece.data.io.hf import read_hf  # datasets only when these formats are used

        options.pop("id_prefix", None)
        path = str(paths[0])
        if builder == "folder":
            return read_hf(path, "train", **options)
        return read_hf(builder, "train", data_files={"train": path}, **options)

    return reader


def _hf_writer(kind: str) -> Callable[..., None]:
    def writer(examples: list[Example], paths: Sequence[PathLike], **options: Any) -> None:
        from dece.data.io.hf import write_hf

        write_hf(examples, paths[0], kind, **options)

    return writer


#: per format, the names of its source / target field options (one CLI spelling: --src-field / --tgt-field)
FIELD_OPTIONS = {"csv": ("src_col", "tgt_col")}


for _fmt in (
    Format("csv", 1, (".csv",), _single_reader(read_csv), _single_writer(write_csv),
           "CSV with a header (columns src, tgt[, meta]; names configurable)"),
    Format("jsonl", 1, (".jsonl",), _single_reader(read_jsonl), _single_writer(write_jsonl),
           'JSON lines {"src", "tgt", "meta"} (field names configurable)'),
    Format("json", 1, (".json",), _hf_reader("json"), _hf_writer("json"),
           "one JSON array of objects (via datasets; field names configurable; meta as JSON text)"),
    Format("parquet", 1, (".parquet",), _hf_reader("parquet"), _hf_writer("parquet"),
           "Parquet (via datasets; field names configurable; meta as JSON text)"),
    Format("hf", 1, (), _hf_reader("folder"), _hf_writer("folder"),
           "a datasets save_to_disk folder (give --format hf)"),
    Format("classification", 1, (".jsonl.gz",), _single_reader(read_classification_jsonl_gz),
           _single_writer(write_classification_jsonl_gz),
           'gzip JSON lines {"func", "target", ...} (Devign); the label is tgt'),
    Format("pairs", 2, (), _read_pairs, _write_pairs,
           "two line-aligned files SRC TGT (e.g. *.buggy *.fixed); meta in SRC.meta.jsonl"),
):
    FORMATS.add(_fmt.name, _fmt)


def _by_ending(path: PathLike) -> Format | None:
    """The format whose file ending ``path`` has, if any."""
    name = str(path)
    return next((FORMATS.get(n) for n in FORMATS if any(name.endswith(s) for s in FORMATS.get(n).suffixes)), None)


def infer_format(paths: Sequence[PathLike]) -> Format:
    """The format announced by the paths: two paths are ``pairs``; one is known by its ending."""
    if len(paths) == 2:
        for path in paths:  # two datasets given where one was meant: never read them as text lines
            fmt = _by_ending(path)
            if fmt is not None and fmt.n_paths == 1:
                raise ConfigError(f"format: two paths are read as line-aligned source / target text files, but "
                                  f"{path} is a {fmt.name} file; give one path, or --format pairs if both "
                                  "really are plain text, one example per line")
        return FORMATS.get("pairs")
    if len(paths) == 1 and (fmt := _by_ending(paths[0])) is not None:
        return fmt
    endings = ", ".join(f"{s} ({n})" for n in FORMATS for s in FORMATS.get(n).suffixes)
    raise ConfigError(f"format: cannot tell the format of {list(map(str, paths))}; "
                      f"give --format or use one path ending in {endings}, or two paths for pairs")


def resolve_format(name: str | None, paths: Sequence[PathLike]) -> Format:
    """The named format (checked against the number of paths), or the inferred one when ``name`` is None."""
    fmt = infer_format(paths) if name is None else FORMATS.get(name)
    if len(paths) != fmt.n_paths:
        raise ConfigError(f"format: {fmt.name!r} takes {fmt.n_paths} path(s), got {len(paths)}")
    return fmt
