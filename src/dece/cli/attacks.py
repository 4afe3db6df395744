"""`dece attacks`: list the attacks, their parameters with defaults, and what each does."""

from __future__ import annotations

import argparse
import dataclasses

from dece.attacks import ATTACKS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attacks", help="list the backdoor attacks and their parameters")
    p.set_defaults(func=run)


def _value(value: object) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


def run(args: argparse.Namespace) -> int:
    for name in ATTACKS.names():
        attack = ATTACKS.get(name)  # the class: some attacks need parameters to be built
        defaults = {f.name: f.default for f in dataclasses.fields(attack)}
        params = "  ".join(f"{k}={_value(v)}" for k, v in defaults.items()) or "(no parameters)"
        print(f"{name:<18} [{attack.task}] {attack.summary}")
        print(f"{'':<18} {params}")
    return 0
