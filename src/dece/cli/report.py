"""`dece report RUN_DIR [--output-dir DIR] [--versus ARM] [--no-plots]`: Markdown tables in the paper's layout
(rows = arms, columns = attack x BLEU/CodeBLEU/ASR) with paired tests of DeCE against every other arm (and of each
--versus ARM too), learning-dynamics plots (PNG) and one self-contained HTML page, for a run folder (`dece run`)
or a sweep folder (`dece sweep`). Written to RUN_DIR/report/ by default."""

from __future__ import annotations

import argparse

from pathlib import Path

from dece.cli.common import check_writable_dir
from dece.errors import ConfigError
from dece.reporting import build_report, missing_note


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="tables, plots and an HTML page of a run or sweep", description=__doc__)
    p.add_argument("run_dir", help="a run or sweep folder")
    p.add_argument("--output-dir", "--out", dest="out", help="output folder (default: RUN_DIR/report)")
    p.add_argument("--no-plots", action="store_true", help="tables only")
    p.add_argument("--versus", action="append", default=[], metavar="ARM",
                   help="also test this arm against every other arm (paired by test row over seeds; repeatable), "
                        "e.g. a filter defense against clean-ce")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir} {'is a file' if run_dir.exists() else 'does not exist'}: give a run folder "
                          "(a dece run's output_dir) or a sweep folder")
    if run_dir.parent.name == "arms" and (run_dir / "metrics.json").exists():
        raise ConfigError(f"{run_dir} is one arm's folder; give its run folder, {run_dir.parent.parent}")
    if run_dir.name == "cells" and (run_dir.parent / "sweep.json").exists():
        raise ConfigError(f"{run_dir} holds a sweep's cells; give the sweep folder, {run_dir.parent}")
    check_writable_dir(args.out or run_dir / "report", "--output-dir")
    paths = build_report(args.run_dir, args.out, plots=not args.no_plots, versus=list(dict.fromkeys(args.versus)))
    n = sum(len(v) for v in paths["plots"].values())
    waiting = missing_note(paths["not_started"], paths["gone"])
    print(f"report of {paths['runs']} run(s), {paths['arms_done']} of {paths['arms']} arm(s) finished{waiting}: "
          f"{paths['markdown']}, {paths['html']} ({n} plot{'' if n == 1 else 's'})")
    return 0
