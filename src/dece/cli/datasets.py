"""`dece datasets`: list the dataset kinds of `[dataset] kind = ...`, their splits, options with defaults,
task and language."""

from __future__ import annotations

import argparse

from dece.cli.listing import datasets, print_entries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the dataset kinds and their options")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_entries(datasets(), 18)
    return 0
