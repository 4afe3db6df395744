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
    "demo", "pretrain", "run", "evaluate", "payload_prior", "poison", "attacks", "defenses", "losses", "datasets",
    "sweep", "report", "audit", "reference",
)


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (as every other error of ``dece``) and a pointer to
    ``--help`` instead of the usage block; exit status 2 as before. Sub-command parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="dece", description="Defend code LMs against backdoors with DeCE.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    except BrokenPipeError:  # the reader went away (`dece attacks | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"dece {args.command}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except (DeceError, OSError) as err:  # expected failures: one line, exit 2 (a traceback with --debug)
        if args.debug:
            raise
        from dece.training.distributed import is_main

        if is_main():  # under torchrun / accelerate launch every process raises the same: say it once
            print(f"dece {args.command}: error: {describe_error(err)}", file=sys.stderr)
        return 2
    finally:
        from dece.training.distributed import shutdown

        shutdown()


def describe_error(err: BaseException) -> str:
    """One line for an expected failure: dece's own message, or an I/O error with its path and a hint
    (a missing hub model without network, a read-only folder...)."""
    if isinstance(err, DeceError) or not isinstance(err, OSError):
        return str(err)
    where = f": {err.filename}" if getattr(err, "filename", None) else ""
    if isinstance(err, PermissionError):
        return f"cannot write or read{where} (permission denied): choose a writable folder"
    if isinstance(err, FileNotFoundError) and where:
        return f"no such file or folder{where}"
    message = (err.strerror or str(err)).splitlines()[0] if (err.strerror or str(err)) else type(err).__name__
    return f"{message}{where}"

