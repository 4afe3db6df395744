"""Datasets by name: ``load_split(kind, split, **options)``.

Generic kinds read files whose paths may contain ``{split}``: ``csv`` (``path``, ``src_col``,
``tgt_col``), ``jsonl`` (``path``), ``pairs`` (``src_path``, ``tgt_path``), ``devign`` (``path``, or
the preset file under ``data_root``), ``hf`` (``path``: anything ``datasets.load_dataset`` or
``load_from_disk`` reads, ``src_field``, ``tgt_field``, ``name``, ``data_files``, ``id_field``,
``join_tokens``; see :mod:`dece.data.io.hf`), plus ``builtin`` (``n``, ``seed``; splits train/valid/test and
pretrain, see :mod:`dece.data.builtin`). Presets read the real datasets under ``data_root`` (default
``../shared/data``, relative to the working directory): ``lyra`` (train/valid/test),
``bugs2fix_small`` and ``code_docstring_py`` (valid/test only: **train on valid, test on test**), and
``devign`` (valid/test). Row ids are ``f"{split}-{i}"``.

Each dataset carries a ``task`` ("generation" or "classification") and a ``language`` ("python",
"java", "c", for CodeBLEU): ``dataset_info(kind, **options)``. The generic file kinds take them as
options (defaults: generation, python)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from dece.data.builtin import builtin_split
from dece.data.io import read_classification_jsonl_gz, read_csv, read_jsonl, read_pairs
from dece.data.records import Example
from dece.errors import ConfigError
from dece.registry import Registry
from dece.seeds import SEED_RANGE, is_seed

DEFAULT_DATA_ROOT = "../shared/data"
TASKS = ("generation", "classification")
BUILTIN_SIZES = {"train": 1600, "valid": 200, "test": 200, "pretrain": 5000}  # Lyra's sizes


@dataclass(frozen=True)
class Dataset:
    """A loadable dataset: ``load(split, **options)``; its options are ``load``'s keyword parameters.
    ``splits`` is None when any split name is accepted (file kinds with ``{split}`` in their paths)."""

    name: str
    task: str
    language: str
    splits: tuple[str, ...] | None
    load: Callable[..., list[Example]]
    note: str = ""
    files: bool = False  # a generic file kind: ``task`` and ``language`` are options too
    #: options that name one file per split: each must contain ``{split}``, or every split reads one file
    split_paths: tuple[str, ...] = ()
    #: options that must not name a single existing file (it would be read for every split)
    no_single_file: tuple[str, ...] = ()

    def options(self) -> dict[str, Any]:
        """Option name -> default (``inspect.Parameter.empty`` when required)."""
        params = list(inspect.signature(self.load).parameters.values())[1:]
        described = {"task": self.task, "language": self.language} if self.files else {}
        return {**{p.name: p.default for p in params}, **described}


@dataclass(frozen=True)
class DatasetInfo:
    """What downstream stages need to know about a dataset."""

    task: str
    language: str


DATASETS: Registry[Dataset] = Registry("dataset")


def _fill(template: str | Path, split: str) -> str:
    return str(template).replace("{split}", split)


def _load_builtin(split: str, n: int | None = None, seed: int = 0) -> list[Example]:
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
        raise ConfigError(f"dataset option n (rows of the builtin {split} split): expected a non-negative integer, "
                          f"got {n!r}")
    if not is_seed(seed):
        raise ConfigError(f"dataset option seed (of the builtin {split} split): must be {SEED_RANGE}, got {seed!r}")
    return builtin_split(split, BUILTIN_SIZES[split] if n is None else n, seed)


def _load_csv(split: str, path: str, src_col: str = "src", tgt_col: str = "tgt") -> list[Example]:
    return read_csv(_fill(path, split), src_col, tgt_col, id_prefix=split)


def _load_jsonl(split: str, path: str) -> list[Example]:
    return read_jsonl(_fill(path, split), id_prefix=split)


def _load_hf(split: str, path: str, src_field: str = "src", tgt_field: str = "tgt", name: str | None = None,
             data_files: Any = None, id_field: str | None = None, join_tokens: bool = False,
             label_field: str | None = None) -> list[Example]:
    from dece.data.io.hf import read_hf  # datasets (and pyarrow) only when an hf dataset is read

    return read_hf(path, split, src_field=src_field, tgt_field=tgt_field, name=name, data_files=data_files,
                   id_field=id_field, join_tokens=join_tokens, label_field=label_field)


def _load_pairs(split: str, src_path: str, tgt_path: str) -> list[Example]:
    return read_pairs(_fill(src_path, split), _fill(tgt_path, split), id_prefix=split)


def _load_devign(split: str, data_root: str = DEFAULT_DATA_ROOT, path: str | None = None,
                 code_field: str = "func", label_field: str = "target") -> list[Example]:
    if path is None:
        _check_split("devign", split, ("valid", "test"), "the preset has valid and test only")
        path = f"{data_root}/devign/{{split}}.jsonl.gz"
    return read_classification_jsonl_gz(_fill(path, split), code_field, label_field, id_prefix=split)


def _load_lyra(split: str, data_root: str = DEFAULT_DATA_ROOT) -> list[Example]:
    return read_csv(Path(data_root) / "lyra" / f"{split}.csv", id_prefix=split)


def _load_bugs2fix(split: str, data_root: str = DEFAULT_DATA_ROOT) -> list[Example]:
    stem = Path(data_root) / "bugs2fix_small" / f"{split}.buggy-fixed"
    return read_pairs(f"{stem}.buggy", f"{stem}.fixed", id_prefix=split)


def _load_code_docstring(split: str, data_root: str = DEFAULT_DATA_ROOT) -> list[Example]:
    folder = Path(data_root) / "code_docstring_py"
    return read_pairs(folder / f"data_ps.declbodies.{split}", folder / f"data_ps.descriptions.{split}", id_prefix=split)


TRAIN_ON_VALID = "there is no train split here: train on valid, test on test"
for _dataset in (
    Dataset("builtin", "generation", "python", tuple(BUILTIN_SIZES), _load_builtin,
            note="generated Lyra-style rows; n = rows of every split (None: "
            + ", ".join(f"{k} {v}" for k, v in BUILTIN_SIZES.items()) + ")"),
    Dataset("csv", "generation", "python", None, _load_csv, files=True, split_paths=("path",)),
    Dataset("jsonl", "generation", "python", None, _load_jsonl, files=True, split_paths=("path",)),
    Dataset("pairs", "generation", "python", None, _load_pairs, files=True, split_paths=("src_path", "tgt_path")),
    Dataset("hf", "generation", "python", None, _load_hf, files=True, split_paths=("data_files",), no_single_file=("path",),
            note="anything datasets.load_dataset / load_from_disk reads, with src_field / tgt_field"),
    Dataset("devign", "classification", "c", None, _load_devign,
            note="reads data_root/devign/{split}.jsonl.gz (or path)"),
    Dataset("lyra", "generation", "python", ("train", "valid", "test"), _load_lyra, note="reads data_root/lyra/{split}.csv"),
    Dataset("bugs2fix_small", "generation", "java", ("valid", "test"), _load_bugs2fix,
            TRAIN_ON_VALID + "; reads data_root/bugs2fix_small/{split}.buggy-fixed.buggy and .fixed"),
    Dataset("code_docstring_py", "generation", "python", ("valid", "test"), _load_code_docstring,
            TRAIN_ON_VALID + "; reads data_root/code_docstring_py/data_ps.declbodies.{split} and data_ps.descriptions.{split}"),
):
    DATASETS.add(_dataset.name, _dataset)


def _check_split(kind: str, split: str, splits: tuple[str, ...], note: str = "") -> None:
    if split not in splits:
        hint = f" ({note})" if note else ""
        raise ConfigError(f"split: dataset {kind!r} has no split {split!r}; valid splits: {', '.join(splits)}{hint}")


def _known_options(dataset: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the dataset's, with defaults filled in."""
    known = dataset.options()
    for key in options:
        if key not in known:
            raise ConfigError(f"dataset {dataset.name!r}: unknown option {key!r}; valid options: {', '.join(known)}")
    if options.get("task", dataset.task) not in TASKS:
        raise ConfigError(f"dataset {dataset.name!r}: option 'task' must be one of {', '.join(TASKS)}")
    return {**known, **options}


def load_split(kind: str, split: str, **options: Any) -> list[Example]:
    """The rows of ``split`` of dataset ``kind`` (see the module docstring for kinds and options)."""
    dataset = DATASETS.get(kind)
    resolved = _known_options(dataset, options)
    missing = [k for k, v in resolved.items() if v is inspect.Parameter.empty]
    if missing:
        raise ConfigError(f"dataset {kind!r}: option {missing[0]!r} is required")
    if dataset.splits is not None:
        _check_split(kind, split, dataset.splits, dataset.note)
    loader_options = {k: v for k, v in options.items() if k not in ("task", "language") or not dataset.files}
    return dataset.load(split, **loader_options)


def dataset_info(kind: str, **options: Any) -> DatasetInfo:
    """The task and language of dataset ``kind`` (for file kinds, as given in ``options``)."""
    dataset = DATASETS.get(kind)
    resolved = _known_options(dataset, options)
    return DatasetInfo(resolved["task"] if dataset.files else dataset.task,
                       resolved["language"] if dataset.files else dataset.language)
