"""`dece pretrain [CONFIG.toml]`: build (or find cached) the pretrained tiny model that the config's
arms start from, without running them; prints its folder. Without CONFIG: the built-in default's.
`dece run` does the same on its own first, so this only warms the cache (e.g. before a sweep)."""

from __future__ import annotations

import argparse

from dece.cli.demo import default_config_path
from dece.cli.common import add_config_arguments, overrides
from dece.errors import ConfigError
from dece.experiments import load_config
from dece.experiments.base_model import pretrained_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain (and cache) a config's tiny base model", description=__doc__)
    p.add_argument("config", nargs="?", help="experiment TOML with a [pretrain] table (default: the built-in default)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    cfg = load_config(path, overrides(args))
    if cfg.pretrain is None:
        raise ConfigError(f"{path}: no [pretrain] table; nothing to pretrain")
    print(pretrained_model(cfg))
    return 0
