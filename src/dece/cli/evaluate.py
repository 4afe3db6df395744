"""`dece evaluate MODEL [CONFIG.toml] [--set key=value ...] [--output-dir DIR]`: score a model that
`dece run` did not train (a saved model folder, a PEFT adapter folder, or an hf: checkpoint) on a
config's clean and triggered test sets, as an arm is scored: the config's metrics, ASR and FTR.
Without CONFIG: the built-in default's data and attack. Writes metrics.json, predictions.jsonl and
config.toml into OUTPUT_DIR/evaluate/NAME (OUTPUT_DIR: the config's, or --output-dir; NAME: the
model folder's name, its parent's for .../model)."""

from __future__ import annotations

import argparse
import json

from dece.cli.demo import default_config_path
from dece.cli.run import add_config_arguments, overrides
from dece.experiments import load_config
from dece.experiments.model_eval import default_output_dir, evaluate_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a saved model on a config's clean and triggered test sets",
                       description=__doc__)
    p.add_argument("model", help="saved model folder (e.g. runs/demo/arms/poisoned-ce/model) or hf:NAME")
    p.add_argument("config", nargs="?", help="experiment TOML whose dataset/attack/eval to use (default: built-in)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or default_config_path(), overrides(args))
    out = default_output_dir(cfg, args.model)
    metrics = evaluate_model(cfg, args.model, out)
    print(json.dumps(metrics, indent=1, default=str))
    print(f"results: {out}")
    return 0
