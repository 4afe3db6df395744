"""`dece losses`: list the training losses (an arm's `loss`), their parameters with defaults, the
backends they run on, and what each is."""

from __future__ import annotations

import argparse

from dece.losses import LOSSES, loss_defaults
from dece.losses.base import TokenLoss


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("losses", help="list the training losses (arms' `loss`) and their parameters")
    p.set_defaults(func=run)


def _params(defaults: dict) -> str:
    return "  ".join(f"{k}={v}" for k, v in defaults.items()) or "(no parameters)"


def run(args: argparse.Namespace) -> int:
    for name in LOSSES.names():
        cls = LOSSES.get(name)
        print(f"{name:<16} {cls.summary}")
        print(f"{'':<16} {_params(loss_defaults(cls, common=False))}  [backends: {', '.join(cls.backends)}]")
    print(f"\nevery loss also takes: {_params(loss_defaults(TokenLoss))}")
    return 0
