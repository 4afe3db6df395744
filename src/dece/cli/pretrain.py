"""`dece pretrain [CONFIG.toml]`: build (or find cached) the pretrained tiny model that the config's
arms start from, without running them; prints its folder. Without CONFIG: the built-in default's.
On a sweep config, the base of every cell (one folder per distinct base, usually one).
`dece run` does the same on its own first, so this only warms the cache (e.g. before a sweep)."""

from __future__ import annotations

import argparse

from dece.cli.demo import default_config_path
from dece.cli.common import add_config_arguments, overrides
from dece.errors import ConfigError
from dece.experiments import load_config
from dece.experiments.base_model import base_inputs, pretrained_model
from dece.experiments.config import read_config_data
from dece.experiments.sweep import expand_grid, has_sweep


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain (and cache) a config's tiny base model", description=__doc__)
    p.add_argument("config", nargs="?", help="experiment TOML with a [pretrain] table (default: the built-in default)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    if has_sweep(path, overrides(args)):
        configs = [cell.config for cell in expand_grid(read_config_data(path, overrides(args)))]
    else:
        configs = [load_config(path, overrides(args))]
    bases = {}  # pretrained_model draws and hashes the corpus: ask it once per distinct base
    for cfg in configs:
        if cfg.pretrain is not None:
            bases.setdefault(base_inputs(cfg), cfg)
    if not bases:
        raise ConfigError(f"{path}: no [pretrain] table; nothing to pretrain")
    for cfg in bases.values():
        print(pretrained_model(cfg))
    return 0
