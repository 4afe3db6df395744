"""`dece run CONFIG.toml [--set key.path=value ...]`: run an experiment (resumable); a config with a
[sweep] table runs its grid, as `dece sweep`."""

from __future__ import annotations

import argparse

from dece.cli.common import add_config_arguments, overrides
from dece.cli.sweep import run as run_sweep_command
from dece.experiments import load_config, run_experiment
from dece.experiments.sweep import has_sweep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment from a TOML config", description=__doc__)
    p.add_argument("config", help="path of the experiment's TOML config")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if has_sweep(args.config):  # a [sweep] table: run the grid (dece sweep)
        args.list = False
        return run_sweep_command(args)
    run_experiment(load_config(args.config, overrides(args)))
    return 0
