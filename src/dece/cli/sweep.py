"""`dece sweep CONFIG.toml [--set key.path=value ...] [--list]`: run every cell of the config's
[sweep] grid into one store (RUN_DIR/cells/<cell>/), skipping finished cells; a killed sweep resumes
where it stopped. `dece run` on a config with a [sweep] table does the same. --list prints the cells
and whether each is done, without running anything. See dece.experiments.sweep."""

from __future__ import annotations

import argparse

from dece.cli.common import add_config_arguments, overrides
from dece.experiments.config import read_config_data
from dece.experiments.sweep import expand_grid, run_sweep, sweep_status
from dece.reporting.markdown import write_results_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of experiments (resumable)", description=__doc__)
    p.add_argument("config", help="path of a TOML config with a [sweep] table")
    add_config_arguments(p)
    p.add_argument("--list", action="store_true", help="list the cells and their status; run nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = read_config_data(args.config, overrides(args))
    if args.list:
        grid = expand_grid(data)
        cells = sweep_status(grid)
        print(f"{sum(s['done'] for s in cells)} of {len(cells)} cells done; each is a folder of {grid[0].dir.parent}")
        for s in cells:
            print(f"{'done   ' if s['done'] else 'pending'}  {s['name']}")
        return 0
    status = run_sweep(data, on_done=write_results_markdown)
    return 0 if all(s["done"] for s in status) else 1
