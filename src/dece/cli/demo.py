"""`dece demo`: the built-in default experiment (src/dece/configs/default.toml): pretrain a tiny T5 on
clean built-in rows (cached), fine-tune it on the BadPre-poisoned built-in task with CE and with
DeCE, plus a clean CE reference, and print the table."""

from __future__ import annotations

import argparse
from importlib import resources

from dece.cli.common import add_config_arguments, overrides
from dece.experiments import load_config, run_experiment


def default_config_path() -> str:
    return str(resources.files("dece.configs") / "default.toml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the built-in default experiment", description=__doc__)
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = default_config_path()
    print(f"dece demo: running {path}")
    run_experiment(load_config(path, overrides(args)))
    return 0
