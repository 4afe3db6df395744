"""`dece defenses`: list the defenses, their kind, parameters with defaults, and what each does."""

from __future__ import annotations

import argparse

from dece.cli.listing import defenses, print_entries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("defenses", help="list the backdoor defenses (arms' `defense`) and their parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_entries(defenses(), 22)
    print("\nloss-based baselines (arm `loss`): label_smoothing, gce, in_trust, sce (see `dece losses`)")
    return 0
