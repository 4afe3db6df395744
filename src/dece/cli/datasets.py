"""`dece datasets`: list the dataset kinds of `[dataset] kind = ...`, their splits, options with defaults,
task and language."""

from __future__ import annotations

import argparse
import inspect

from dece.data.catalog import DATASETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the dataset kinds and their options")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in DATASETS.names():
        d = DATASETS.get(name)
        options = "  ".join(k if v is inspect.Parameter.empty else f"{k}={v}" for k, v in d.options().items())
        splits = ", ".join(d.splits) if d.splits else "any"
        print(f"{name:<18} [{d.task}, {d.language}] splits: {splits}" + (f"; {d.note}" if d.note else ""))
        print(f"{'':<18} {options or '(no options)'}")
    return 0
