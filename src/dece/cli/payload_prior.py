"""`dece payload-prior MODEL [CONFIG.toml] [--alpha-base A] [--label-smoothing E] [--epoch N] [--set key=value ...]`:
how likely MODEL already finds the first token of each poisoned training row's payload (the config's attack
at its rate and seed, as `dece run` poisons), against DeCE's half-pull threshold (1 - alpha)(1 - eps) / alpha:
a payload token rated at or above it is pulled by DeCE at least half as hard as by cross-entropy, so DeCE
cannot damp it from its first epoch. MODEL: a saved model folder, `dece pretrain CONFIG`'s base, or hf:NAME.
Prints the summary as JSON (probabilities 0-1, the share at or above the threshold in %; the threshold null
once alpha underflows to 0; rows whose payload starts past model.max_target_length are counted and left out).
Nothing is trained (but an adapter folder's base model, when not cached yet). Without CONFIG: the built-in
default's data and attack."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from dece.cli.common import add_config_arguments, number, overrides
from dece.cli.demo import default_config_path
from dece.errors import ConfigError
from dece.experiments import load_config
from dece.experiments.data_prep import prepare_data
from dece.experiments.model_eval import load_model
from dece.experiments.payload_prior import half_pull_threshold, payload_prior, poisoned_pairs
from dece.experiments.sweep import has_sweep
from dece.losses.dece import DEFAULT_ALPHA_BASE, DEFAULT_LABEL_SMOOTHING


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("payload-prior", help="how likely a model already finds each poisoned row's first payload "
                                             "token, against DeCE's threshold", description=__doc__)
    p.add_argument("model", help="saved model folder (an arm's arms/ARM/model, a cached base) or hf:NAME")
    p.add_argument("config", nargs="?", help="experiment TOML whose data and attack to use (default: built-in)")
    p.add_argument("--alpha-base", type=number, default=DEFAULT_ALPHA_BASE,
                   help=f"DeCE's decay base (default {DEFAULT_ALPHA_BASE})")
    p.add_argument("--label-smoothing", type=number, default=DEFAULT_LABEL_SMOOTHING,
                   help=f"DeCE's eps (default {DEFAULT_LABEL_SMOOTHING})")
    p.add_argument("--epoch", type=number, default=1.0, help="the epoch whose alpha sets the threshold (default 1)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.label_smoothing < 1.0:
        raise ConfigError(f"--label-smoothing: must lie in [0, 1), got {args.label_smoothing}")
    if not (math.isfinite(args.epoch) and args.epoch >= 1):
        raise ConfigError(f"--epoch: must be a finite number >= 1 (epochs count from 1), got {args.epoch}")
    try:  # before any loading
        half_pull_threshold(args.alpha_base, args.epoch, args.label_smoothing)
    except ConfigError as err:
        raise ConfigError(f"--alpha-base: {err}") from None
    path = args.config or default_config_path()
    if has_sweep(path, overrides(args)):
        raise ConfigError(f"{path} is a sweep: give the config of one cell (RUN_DIR/cells/CELL/config.toml once it "
                          "has started) or a config without a [sweep] table")
    cfg = load_config(path, overrides(args))
    if cfg.attack is None:
        raise ConfigError(f"{path}: no [attack]; the prior is measured on the poisoned training rows")
    data = prepare_data(cfg)
    model, tokenizer, is_enc_dec = load_model(cfg, args.model, data, Path(cfg.output_dir), lambda line: None)
    pairs = poisoned_pairs(data.poisoned_train or [], data.clean_train)
    try:
        summary = payload_prior(model, tokenizer, is_enc_dec, cfg.model, pairs, alpha_base=args.alpha_base,
                                label_smoothing=args.label_smoothing, epoch=args.epoch)
    except ValueError as err:
        raise ConfigError(f"{path} (attack {cfg.attack.name!r}): {err}") from None
    finite = math.isfinite(summary["threshold"])  # alpha underflows to 0 at a huge epoch: JSON has no infinity
    print(json.dumps({"model": args.model, "attack": cfg.attack.name, **summary,
                      "threshold": summary["threshold"] if finite else None}, indent=1))
    if not finite:
        print(f"alpha is 0 at epoch {args.epoch:g}: DeCE pulls no token at half CE's strength (threshold: none)")
        return 0
    left = (f" ({summary['left_out']} more have their payload past model.max_target_length = "
            f"{cfg.model.max_target_length}, left out)" if summary["left_out"] else "")
    pull = (f"DeCE's pull on it: {100 * summary['pull_median']:.3g}% of CE's at the median row, "
            f"{100 * summary['pull_mean']:.3g}% on average")
    if summary["threshold"] > 1:  # alpha is so small that even a certain token is pulled at less than half
        print(f"no token reaches the threshold at epoch {args.epoch:g} ({summary['threshold']:.3g} > 1: DeCE pulls "
              f"none at half CE's strength); {summary['rows']} poisoned rows{left}; {pull}")
        return 0
    print(f"{summary['above_threshold_pct']:.1f}% of {summary['rows']} poisoned rows{left}: first payload token at or "
          f"above {summary['threshold']:.4f} (DeCE pulls it at least half as hard as CE at epoch {args.epoch:g}); {pull}")
    return 0
