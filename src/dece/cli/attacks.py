"""`dece attacks`: list the attacks, their parameters with defaults, and what each does."""

from __future__ import annotations

import argparse

from dece.cli.listing import attacks, print_entries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attacks", help="list the backdoor attacks and their parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_entries(attacks(), 18)
    return 0
