"""Helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable

from dece.errors import ConfigError


def integer(text: str) -> int:
    """An argparse ``type`` for integer options: ASCII digits with an optional sign only (``int`` would also take
    ``"٣"`` or ``"1_000"``).

    Raises:
        argparse.ArgumentTypeError: anything else (argparse names the option).
    """
    if re.fullmatch(r"[+-]?[0-9]+", text.strip()) is None:
        raise argparse.ArgumentTypeError(f"expected an integer (ASCII digits), got {text!r}")
    return int(text)


def number(text: str) -> float:
    """An argparse ``type`` for real-valued options: an ASCII decimal or exponent literal, ``inf`` / ``nan``
    included (each option checks its range); ``float`` would also take ``"٠.١"`` or ``"1_0e-1"``.

    Raises:
        argparse.ArgumentTypeError: anything else (argparse names the option).
    """
    literal = r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)"
    if re.fullmatch(literal, text.strip(), re.IGNORECASE) is None:
        raise argparse.ArgumentTypeError(f"expected a number (ASCII digits), got {text!r}")
    return float(text)


def check_writable(paths: Iterable[str | Path], option: str) -> None:
    """Refuse, before anything is read or written, an output path that cannot be written: its folder
    (or the nearest existing parent, when the writer would create it) is read-only, or the path is a
    folder, a FIFO, a device or a read-only file (a symbolic link is judged by its target, which the
    writer replaces). Multi-output commands call this for every output
    first, so a failure never leaves some outputs written and others not.

    Raises:
        ConfigError: naming ``option``, the path and what to do.
    """
    for raw in paths:
        if str(raw).endswith(("/", os.sep)):  # Path() would drop the slash and write a file of that name
            raise ConfigError(f"{option}: {raw} ends with a slash (a folder); give a file path")
        path = Path(raw)
        if path.is_dir():
            raise ConfigError(f"{option}: {path} is a folder; give a file path")
        if path.exists() and not path.is_file():
            raise ConfigError(f"{option}: {path} is not a regular file (a FIFO or a device); give a file path")
        check_writable_dir(Path(os.path.realpath(path)).parent, option)  # a symlink: its target is written
        if path.exists() and not os.access(path, os.W_OK):
            raise ConfigError(f"{option}: {path} is read-only; choose another path")


DATASETS_FOLDER_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # what save_to_disk writes


def check_writable_folders(paths: Iterable[str | Path], option: str) -> None:
    """Refuse, before anything is read or written, an output *folder* (``--format hf``) that cannot be written or
    whose writing would lose files: the writer replaces the whole folder, so an existing one must be empty or a
    datasets folder (``save_to_disk``'s files); a file of that name, ``.`` or ``..``, or a parent that refuses
    files are refused too. A trailing slash is fine.

    Raises:
        ConfigError: naming ``option``, the path and what to do.
    """
    for raw in paths:
        path = Path(raw)
        if path.name in ("", ".", ".."):
            raise ConfigError(f"{option}: {raw} names no folder of its own; give a new folder's path")
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{option}: {path} is a file; this format writes a folder: give a folder path")
        if path.is_dir() and any(path.iterdir()) and not any((path / f).is_file() for f in DATASETS_FOLDER_FILES):
            raise ConfigError(f"{option}: {path} holds other files, and this format replaces the whole folder; "
                              "give a new or empty folder (or a datasets folder to rewrite)")
        check_writable_dir(Path(os.path.realpath(path)), option)


def check_writable_dir(folder: str | Path, option: str) -> None:
    """Refuse an output folder that cannot be created or written (the nearest existing parent decides).

    Raises:
        ConfigError: naming ``option`` and the folder.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file, not a folder" if existing == folder else f"cannot be made: {existing} is a file, not a folder"
        raise ConfigError(f"{option}: {folder} {what}; choose another folder")
    if not _can_create_in(existing):
        raise ConfigError(f"{option}: {folder} cannot be written ({existing} is read-only or refuses new files); "
                          "choose another folder")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, tried for real (a temporary file, removed at once):
    permission bits say nothing to root, and /proc or /sys refuse files whatever they say."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=3 --set attack.rate=0.1 (repeatable)")
    p.add_argument("--output-dir", help="shorthand for --set output_dir=PATH")


def overrides(args: argparse.Namespace) -> list[str]:
    extra = [f'output_dir="{args.output_dir}"'] if args.output_dir else []
    return list(args.overrides) + extra
