"""`dece audit RUN_DIR [--arm ARM] [--score auto|drop|collapse|rank|pattern|onset] [--stat mean|max] [--epochs N]
[--ngram N] [--hard-loss NATS] [--trigger] [--k K] [--out DIR]`: rank the training rows of each arm by how
suspicious their learning dynamics are (see dece.reporting.audit), print precision/recall@k against the known
poisoned rows, and write the flagged rows (the top k) to RUN_DIR/audit/ARM.csv, with RUN_DIR/audit/summary.json
and summary.md. The dynamics scores need `[dynamics] row_losses = true`; `--score pattern` and `--score onset`
read a DeCE arm's saved model instead (`--ngram`, `--hard-loss`) and also print the n-grams they found;
`--trigger` (onset) also names the input word each n-gram's failing rows share and flags every row holding it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from dece.cli.common import check_writable_dir, integer, number
from dece.defenses.row_scores import PLACES_KEY, SCORES, TOKEN_SCORES
from dece.reporting.audit import (AUTO, PATTERN, STATISTICS, audit_arm, audit_tokens, auditable_arms, dece_model_arms,
                                  metrics_table)
from dece.errors import ConfigError
from dece.experiments.store import write_json_atomic, write_text_atomic


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="rank training rows by suspicious learning dynamics", description=__doc__)
    p.add_argument("run_dir", help="a run folder written by `dece run`")
    p.add_argument("--arm", action="append", default=[], help="arm to audit (repeatable; default: every arm with per-row losses)")
    p.add_argument("--score", choices=(AUTO, *SCORES, *TOKEN_SCORES), default=AUTO,
                   help="drop: learned late (CE arms); collapse: high, then falls; rank: never learned (DeCE arms); "
                        "auto (default): rank for arms trained with loss dece, drop for the others; pattern: places a "
                        "DeCE arm's final model fails on together in many rows; onset: a place it fails on in every row "
                        "that holds it (pattern, onset: default arms are the DeCE arms with a saved model)")
    p.add_argument("--ngram", type=integer, help="pattern, onset: the n-gram length naming a hard token (default 2)")
    p.add_argument("--hard-loss", type=number,
                   help="pattern, onset: a token is hard at this CE and above, in nats (default 3.0: probability under 5%%)")
    p.add_argument("--trigger", action="store_true",
                   help="onset: also name the input word each place's failing rows share (the trigger) and flag every "
                        "row holding it")
    p.add_argument("--stat", choices=STATISTICS,
                   help="per-row loss: mean or max token CE (default: mean for drop/collapse, max for rank)")
    p.add_argument("--epochs", type=integer, help="use only the first N epochs of dynamics")
    p.add_argument("--k", type=integer, help="rows flagged (default: the number of poisoned rows if known, else 5%%)")
    p.add_argument("--out", help="folder of the CSVs and summary (default: RUN_DIR/audit)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    for option, value in (("--k", args.k), ("--epochs", args.epochs)):
        if value is not None and value < 1:
            raise ConfigError(f"{option}: must be a positive integer, got {value}")
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: " + ("a file, not a run folder" if run_dir.exists() else "no such folder"))
    if run_dir.resolve().parent.name == "arms" and (run_dir.resolve().parent.parent / "config.toml").exists():
        raise ConfigError(f"{run_dir} is an arm's folder; audit its run folder: "
                          f"dece audit {run_dir.resolve().parent.parent} --arm {run_dir.resolve().name}")
    if not (run_dir / "config.toml").exists():
        cells = " (a sweep folder: audit one of its cells/<cell> folders)" if (run_dir / "sweep.json").exists() else ""
        raise ConfigError(f"{run_dir} is not a run folder of `dece run` (no config.toml){cells}")
    tokens = args.score in TOKEN_SCORES
    if not tokens and (args.ngram is not None or args.hard_loss is not None):
        raise ConfigError("--ngram and --hard-loss belong to --score pattern and --score onset")
    given = [opt for opt, value in (("--stat", args.stat), ("--epochs", args.epochs)) if value is not None]
    if args.trigger and args.score != "onset":
        raise ConfigError(f"--trigger belongs to --score onset, not --score {args.score}")
    if tokens and given:
        raise ConfigError(f"{' and '.join(given)} belong{'s' if len(given) == 1 else ''} to the dynamics scores; "
                          f"--score {args.score} reads the final model")
    missing = [arm for arm in args.arm if not (run_dir / "arms" / arm).is_dir()]
    if missing:  # before any model loads or any file is written
        found = ", ".join(p.name for p in sorted((run_dir / "arms").glob("*")) if p.is_dir()) or "none"
        raise ConfigError(f"--arm {missing[0]}: no such arm in {run_dir}; arms: {found}")
    args.arm = list(dict.fromkeys(args.arm))  # each arm once
    if tokens:
        args.ngram = 2 if args.ngram is None else args.ngram
        args.hard_loss = 3.0 if args.hard_loss is None else args.hard_loss
        if args.ngram < 1:
            raise ConfigError(f"--ngram must be >= 1, got {args.ngram}")
        if not (args.hard_loss > 0 and math.isfinite(args.hard_loss)):
            raise ConfigError(f"--hard-loss must be a finite number > 0 (nats), got {args.hard_loss}")
        dece_arms = dece_model_arms(run_dir)
        arms = args.arm or dece_arms
        if not arms:
            raise ConfigError(f"{run_dir}: no arm trained with a DeCE loss kept its model; name one with --arm")
        modelless = [arm for arm in arms if not (run_dir / "arms" / arm / "model").is_dir()]
        if modelless:  # before any other arm's model loads
            raise ConfigError(f"--arm {modelless[0]}: kept no model in {run_dir / 'arms' / modelless[0]} (the "
                              f"{args.score} score reads the final model); arms with one: "
                              + (", ".join(p.parent.name for p in sorted((run_dir / "arms").glob("*/model"))) or "none"))
        for arm in [a for a in arms if a not in dece_arms]:
            print(f"note: arm {arm} was not trained with a DeCE loss: a model that learnt the payload does not fail on "
                  f"it, so the {args.score} score is not meant for it")
    else:
        arms = args.arm or auditable_arms(run_dir)
        if not arms:
            raise ConfigError(f"{run_dir}: no arm has per-row losses; run with [dynamics] row_losses = true")
    out = Path(args.out) if args.out else run_dir / "audit"
    if out.resolve().is_relative_to((run_dir / "arms").resolve()):
        raise ConfigError(f"--out {out}: lies in the run's arms folder, where every folder is an arm; "
                          f"write the audit elsewhere (default {run_dir / 'audit'})")
    check_writable_dir(out, "--out")
    summary, found = [], []  # found: the places each token-score arm's model fails on, as Markdown
    for arm in arms:
        places = None
        if tokens:
            result, places = audit_tokens(run_dir, arm, score=args.score, ngram=args.ngram, hard_loss=args.hard_loss,
                                          trigger=args.trigger)
        else:
            result = audit_arm(run_dir, arm, score=args.score, statistic=args.stat, epochs=args.epochs)
        ks = None if args.k is None else [args.k]
        m = result.metrics(ks)
        if places is not None:
            m[PLACES_KEY[args.score]] = [p.to_dict() for p in places]
            print(f"{arm}: " + ("the places its model fails on together in the most rows beyond chance (rows with both "
                                "hard; with each):" if args.score == PATTERN else
                                "the places its model fails on in the most rows, weighted by the share of the rows "
                                "that hold them:"))
            for p in places[:5]:
                print(f"  {p.describe()}")
            if not places:
                print(f"  none: no target token has CE >= {args.hard_loss:g} nats, so every row scores 0 and the flagged "
                      "rows are the first ones in training order; lower --hard-loss")
            found += [f"## {arm}: the heaviest places", ""] + [f"- {p.describe()}" for p in places] + [""]
        csv_path = result.write_csv(out / f"{arm}.csv", args.k)
        m["csv"] = str(csv_path)
        summary.append(m)
    table = metrics_table(summary)
    write_json_atomic(out / "summary.json", summary)
    write_text_atomic(out / "summary.md", f"# Audit of {run_dir}\n\nscore `{args.score}`; "
                      "P@k and R@k in %, AP = average precision.\n\n" + table + "\n" + "\n".join(found))
    print(table)
    print(f"flagged rows: {', '.join(m['csv'] for m in summary)}")
    return 0
