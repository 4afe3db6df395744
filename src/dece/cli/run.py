"""`dece run CONFIG.toml [--set key.path=value ...]`: run an experiment (resumable); a config with a
[sweep] table runs its grid, as `dece sweep`."""

from __future__ import annotations

import argparse

from dece.experiments import load_config, run_experiment


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=3 --set attack.rate=0.1 (repeatable)")
    p.add_argument("--output-dir", help="shorthand for --set output_dir=PATH")


def overrides(args: argparse.Namespace) -> list[str]:
    extra = [f'output_dir="{args.output_dir}"'] if args.output_dir else []
    return list(args.overrides) + extra


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run an experiment from a TOML config", description=__doc__)
    p.add_argument("config", help="path of the experiment's TOML config")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dece.experiments.sweep import has_sweep

    if has_sweep(args.config):  # a [sweep] table: run the grid (dece sweep)
        from dece.cli.sweep import run as run_sweep_command

        args.list = False
        return run_sweep_command(args)
    run_experiment(load_config(args.config, overrides(args)))
    return 0
