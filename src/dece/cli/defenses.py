"""`dece defenses`: list the defenses, their kind, parameters with defaults, and what each does."""

from __future__ import annotations

import argparse

from dece.defenses import DEFENSES, get_defense


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("defenses", help="list the backdoor defenses (arms' `defense`) and their parameters")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name in DEFENSES.names():
        defense = get_defense(name)
        params = "  ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in defense.params.items()) or "(no parameters)"
        print(f"{name:<22} [{defense.kind}] {defense.summary}")
        print(f"{'':<22} {params}")
    print("\nloss-based baselines (arm `loss`): label_smoothing, gce, in_trust (see dece.losses)")
    return 0
