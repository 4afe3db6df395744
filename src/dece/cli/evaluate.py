"""`dece evaluate MODEL [CONFIG.toml] [--defense NAME [--defense-param K=V ...]] [--set key=value ...]
[--output-dir DIR]`: score a model that `dece run` did not train (a saved model folder, a PEFT adapter
folder, or an hf: checkpoint) on a config's clean and triggered test sets, as an arm is scored: the
config's metrics, ASR and FTR.
Without CONFIG: the built-in default's data and attack. Writes metrics.json, predictions.jsonl and
config.toml into OUTPUT_DIR/evaluate/NAME (OUTPUT_DIR: the config's, or --output-dir; NAME: the
model folder's name, its parent's for .../model; NAME+DEFENSE behind --defense). --defense puts an input
defense (onion, paraphrase) in front of the model, as an input-defense arm does."""

from __future__ import annotations

import argparse
import json

from dece.cli.common import check_writable_dir
from dece.cli.demo import default_config_path
from dece.cli.common import add_config_arguments, overrides
from dece.errors import ConfigError
from dece.experiments import load_config
from dece.component import parse_cli_params
from dece.defenses import DEFENSES
from dece.experiments.model_eval import default_output_dir, evaluate_model, input_defense_arm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score a saved model on a config's clean and triggered test sets",
                       description=__doc__)
    p.add_argument("model", help="saved model folder (e.g. runs/demo/arms/poisoned-ce/model) or hf:NAME")
    p.add_argument("config", nargs="?", help="experiment TOML whose dataset/attack/eval to use (default: built-in)")
    p.add_argument("--defense", help="an input defense in front of the model (e.g. onion; see dece defenses)")
    p.add_argument("--defense-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of --defense, read as the defense declares it (e.g. threshold=0.2, lm=hf:gpt2)")
    add_config_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config or default_config_path(), overrides(args))
    if args.defense_param and not args.defense:
        raise ConfigError("--defense-param given without --defense")
    params = parse_cli_params(DEFENSES.get(args.defense), args.defense_param, "--defense-param") if args.defense else {}
    defense = input_defense_arm(args.defense, params) if args.defense else None
    out = default_output_dir(cfg, args.model, defense)
    check_writable_dir(out, "--output-dir")
    metrics = evaluate_model(cfg, args.model, out, defense=defense)
    print(json.dumps(metrics, indent=1, default=str))
    print(f"results: {out}")
    return 0
