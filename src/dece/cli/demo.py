"""`dece demo`: placeholder until the pipeline lands."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in default experiment")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("dece demo: pipeline not yet available")
    return 0
