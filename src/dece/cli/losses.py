"""`dece losses`: list the training losses (an arm's `loss`), their parameters with defaults, the
backends they run on, and what each is."""

from __future__ import annotations

import argparse

from dece.cli.listing import common_loss_params, losses, print_entries


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("losses", help="list the training losses (arms' `loss`) and their parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print_entries(losses(), 16)
    print(f"\nevery loss also takes: {'  '.join(common_loss_params())}")
    return 0
