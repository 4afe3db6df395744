"""The `dece` command. Each sub-command lives in its own module of this package and is listed in
COMMANDS; a module exposes `register(subparsers)` that adds its parser and sets `func`."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dece.errors import DeceError

# module name under dece.cli -> one sub-command each
COMMANDS: tuple[str, ...] = (
    "demo", "pretrain", "run", "evaluate", "poison", "attacks", "defenses", "losses", "sweep", "report", "audit"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dece", description="Defend code LMs against backdoors with DeCE.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"dece.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # weight-loading bars; dece prints one line per epoch instead
    try:
        return int(args.func(args) or 0)
    except DeceError as err:
        print(f"dece {args.command}: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`dece attacks | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0

