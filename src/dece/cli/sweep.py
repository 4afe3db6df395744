"""`dece sweep CONFIG.toml [--set key.path=value ...] [--list]`: run every cell of the config's
[sweep] grid into one store (RUN_DIR/cells/<cell>/), skipping finished cells; a killed sweep resumes
where it stopped. `dece run` on a config with a [sweep] table does the same. --list prints the cells
and whether each is done (exit status 1 if one holds another config's results), without running
anything. --workers N shares the grid out between N jobs (at most one per cell)
submitted through submitit (--executor slurm: a job array; local: processes here); see
dece.experiments.sweep and dece.experiments.cluster."""

from __future__ import annotations

import argparse
import json
import tomllib
from typing import Any

from dece.cli.common import add_config_arguments, integer, number, overrides
from dece.errors import ConfigError, DataError
from dece.experiments.config import read_config_data
from dece.experiments.sweep import cell_done, check_sweep, expand_grid, name_hides_values, run_sweep, sweep_dir
from dece.reporting.markdown import write_results_markdown


EPILOG = """the [sweep] table: one list of values per config key (dotted for nested keys); the grid is their product,
outermost first, and each cell is the base config with that cell's values set:

  [sweep]
  grid = { "attack.rate" = [0.05, 0.01], seed = [1, 2, 3], arms = [["poisoned-ce", "poisoned-dece"]] }

or the same as a table of its own:

  [sweep.grid]
  "attack.rate" = [0.05, 0.01]
  seed = [1, 2, 3]
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run a grid of experiments (resumable)", description=__doc__, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="path of a TOML config with a [sweep] table")
    add_config_arguments(p)
    p.add_argument("--list", action="store_true", help="list the cells and their status; run nothing")
    p.add_argument("--workers", type=integer,
                   help="submit this many workers (at most one per cell) through submitit instead of running here")
    p.add_argument("--executor", choices=("slurm", "local"), default="slurm",
                   help="where --workers run: a SLURM job array (default), or local processes")
    p.add_argument("--poll", type=number, metavar="SECONDS",
                   help="with --workers: how often a worker looks again at cells other workers hold (default 30)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a submitit parameter, e.g. timeout_min=600, slurm_partition=gpu, gpus_per_node=1 (repeatable)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = read_config_data(args.config, overrides(args))
    if args.list:
        grid = expand_grid(data)
        check_sweep(grid)
        lines, done, conflicts = [], 0, 0
        for cell in grid:  # read-only: a cell whose folder holds another config's results is listed, not fatal
            shown = f"  {json.dumps(cell.overrides)}" if name_hides_values(cell.overrides) else ""
            try:
                state = "done   " if cell_done(cell) else "pending"
            except (ConfigError, DataError) as err:  # another config's results, or an unreadable record
                state, shown, conflicts = "CONFLICT", f"{shown}: {err}", conflicts + 1
            done += state == "done   "
            lines.append(f"{state}  {cell.name}{shown}")
        print(f"{done} of {len(grid)} cells done; each is a folder of {grid[0].dir.parent}"
              + (f"; {conflicts} hold results of another config (a run refuses to start)" if conflicts else ""))
        print("\n".join(lines))
        return 1 if conflicts else 0
    if getattr(args, "workers", None) is not None:
        return _submit(data, args)
    if getattr(args, "param", None):
        raise ConfigError("--param: submitit parameters need --workers N (they configure the submitted jobs)")
    if getattr(args, "poll", None) is not None:
        raise ConfigError("--poll: the workers' poll interval needs --workers N")
    status = run_sweep(data, on_done=write_results_markdown)
    return 0 if all(s["done"] for s in status) else 1


def _param(pair: str) -> tuple[str, Any]:
    key, sep, text = pair.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--param: expected KEY=VALUE, got {pair!r}")
    try:  # a TOML literal (600, 1.5, true, "x"); anything else is text
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def _submit(data: dict[str, Any], args: argparse.Namespace) -> int:
    from dece.experiments.cluster import submit_sweep

    if args.workers < 1:  # before the grid is expanded (seconds on a large grid)
        raise ConfigError(f"--workers: a positive number of jobs, got {args.workers}")
    poll = 30.0 if args.poll is None else args.poll
    if not 0 < poll < float("inf"):
        raise ConfigError(f"--poll: must be a positive number of seconds, got {args.poll}")
    cells = expand_grid(data)
    check_sweep(cells)  # a bad grid or config is refused here, not in every job
    workers = min(args.workers, len(cells))  # a worker beyond one per cell would find nothing to do
    if workers < args.workers:
        print(f"--workers {args.workers}: {len(cells)} cells, so {workers} worker(s)")
    jobs = submit_sweep(data, workers, args.executor, dict(map(_param, args.param)), wait=poll)
    print(f"submitted {len(jobs)} worker(s) ({args.executor}): {' '.join(str(j.job_id) for j in jobs)}; "
          f"logs under {sweep_dir(data) / 'submitit'}; progress: dece sweep {args.config} --list")
    if args.executor != "local":
        return 0
    statuses = [job.result() for job in jobs]  # local processes: wait for them
    write_results_markdown(sweep_dir(data))
    return 0 if all(all(s["done"] for s in status) for status in statuses) else 1
