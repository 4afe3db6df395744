"""`dece poison`: poison a dataset file with an attack and print the report; optionally write the
triggered test set (every eligible test row with the trigger, targets clean)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from dece.attacks import ATTACKS, SELECTIONS, denominators, get_attack, poison_dataset, triggered_test_set
from dece.component import parse_cli_params
from dece.cli.common import check_writable, check_writable_folders, integer, number
from dece.data.io import FORMATS, resolve_format
from dece.data.io.formats import FIELD_OPTIONS, FOLDER_FORMATS, pairs_meta_path
from dece.data.io.common import atomic_write
from dece.data.records import Example
from dece.errors import ConfigError
from dece.seeds import SEED_RANGE, is_seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "poison",
        help="poison a dataset with a backdoor attack",
        description="Poison a share of a dataset's rows with an attack (see `dece attacks`). A path ending in "
        ".csv, .jsonl, .json, .parquet or .jsonl.gz names its format; two paths are line-aligned source/target "
        "files; --format hf a datasets folder (an output folder is replaced whole: it must be new, empty or a "
        "datasets folder). Only the source, target and meta are written.",
    )
    p.add_argument("--attack", required=True, help="attack name (see `dece attacks`)")
    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument("--rate", type=number,
                      help="share of all rows to poison, in [0, 1] (0: with --triggered-test, for that set alone; "
                           "--output is then an unchanged copy)")
    rate.add_argument("--rows", type=integer, help="number of rows to poison (instead of --rate)")
    p.add_argument("--duplicates", type=integer, default=1,
                   help="each poisoned row appears this many times (fast-learnt poison; default 1)")
    p.add_argument("--near-duplicates", action="store_true",
                   help="with --duplicates > 1: poison each copy anew (own trigger position...): near-duplicates")
    p.add_argument("--seed", type=integer, default=1, help="seed of the row selection and trigger positions (default 1, as in configs)")
    p.add_argument("--input", nargs="+", required=True, metavar="PATH", help="dataset to poison (1 or 2 paths)")
    p.add_argument("--output", nargs="+", required=True, metavar="PATH", help="where the poisoned dataset goes")
    p.add_argument("--format", choices=FORMATS.names(), help="format of all files (default: from the paths)")
    p.add_argument("--selection", choices=SELECTIONS.names(), default="random",
                   help="random eligible rows (default) or the first eligible ones")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="attack parameter (once per key); lists as a,b,c (items stripped), or as a JSON list "
                        "'[\"# a, b\", \"# c\"]' when items hold commas (kept as written); an empty item is refused")
    p.add_argument("--triggered-test", nargs="+", metavar="PATH", help="also write the triggered test set here")
    p.add_argument("--test-input", nargs="+", metavar="PATH",
                   help="clean test set to trigger, with --triggered-test (default: the --input rows)")
    p.add_argument("--src-field", "--src-col", dest="src_field",
                   help="the field (CSV: column) that holds the source (default src)")
    p.add_argument("--tgt-field", "--tgt-col", dest="tgt_field",
                   help="the field (CSV: column) that holds the target (default tgt)")
    p.add_argument("--report", metavar="PATH", help="also write the report as JSON")
    p.set_defaults(func=run)


def _column_options(args: argparse.Namespace, fmt_name: str) -> dict[str, Any]:
    """--src-field / --tgt-field as the format's own options (CSV calls them columns)."""
    if fmt_name in ("pairs", "classification") and (args.src_field or args.tgt_field):
        raise ConfigError(f"--src-field/--tgt-field: the {fmt_name} format has no field names")
    names = FIELD_OPTIONS.get(fmt_name, ("src_field", "tgt_field"))
    return {k: v for k, v in zip(names, (args.src_field, args.tgt_field)) if v is not None}


def _read(paths: list[str], args: argparse.Namespace) -> list[Example]:
    fmt = resolve_format(args.format, paths)
    return fmt.read(paths, **_column_options(args, fmt.name))


def _write(rows: list[Example], paths: list[str], args: argparse.Namespace) -> None:
    fmt = resolve_format(args.format, paths)
    fmt.write(rows, paths, **_column_options(args, fmt.name))


def run(args: argparse.Namespace) -> int:
    if ATTACKS.get(args.attack).supplies_data:
        raise ConfigError(f"--attack {args.attack}: the data is poisoned already; use it in a config "
                          "([attack] name = \"given\") to train and measure on it")
    attack = get_attack(args.attack, **parse_cli_params(ATTACKS.get(args.attack), args.param, "--param"))
    if args.rate is not None and not 0.0 <= args.rate <= 1.0:  # before reading a possibly large input
        raise ConfigError(f"--rate: must lie in [0, 1], got {args.rate}")
    if args.rate == 0 and not args.triggered_test:
        raise ConfigError("--rate 0 poisons no row: --output would be an unchanged copy; give --triggered-test "
                          "for a triggered test set alone")
    if args.rows is not None and args.rows <= 0:
        raise ConfigError(f"--rows: must be a positive number of rows, got {args.rows}")
    if not is_seed(args.seed):
        raise ConfigError(f"--seed: must be {SEED_RANGE}, got {args.seed}")
    if not 1 <= args.duplicates <= 100:
        raise ConfigError(f"--duplicates: must be an integer in [1, 100], got {args.duplicates}")
    if args.near_duplicates and args.duplicates == 1:
        raise ConfigError("--near-duplicates: needs --duplicates > 1 (it says how the copies are made)")
    if args.test_input and not args.triggered_test:
        raise ConfigError("--test-input: only read to write --triggered-test; give that too")
    _check_paths(args)
    rows = _read(args.input, args)
    if not rows:
        raise ConfigError(f"--input {' '.join(args.input)}: no rows to poison (the dataset is empty); nothing was written")
    if args.rows is not None and args.rows > len(rows):
        raise ConfigError(f"--rows: {args.rows} rows to poison, but {' '.join(args.input)} has only {len(rows)}; "
                          "nothing was written")
    test_rows = (_read(args.test_input, args) if args.test_input else rows) if args.triggered_test else []
    poisoned, report = poison_dataset(rows, attack, args.rate or 0.0, args.seed, args.selection, n_rows=args.rows,
                                      duplicates=args.duplicates, near_duplicates=args.near_duplicates)
    if not report.n_requested and not args.triggered_test:  # --rate x rows rounds to no row
        raise ConfigError(f"--rate {args.rate}: {args.rate} x {len(rows)} rows rounds to no row to poison; nothing was "
                          "written (raise --rate, give --rows, or add --triggered-test for a triggered test set alone)")
    if report.n_requested and not report.n_poisoned:  # nothing written: an unchanged copy would pass for poisoned
        raise ConfigError(f"--attack {args.attack}: none of the {len(rows)} rows of {' '.join(args.input)} is eligible "
                          "(the attack cannot insert its trigger or payload in them: see `dece attacks` for what "
                          "each attack needs); nothing was written")
    triggered = triggered_test_set(test_rows, attack, args.seed) if args.triggered_test else []
    # every input read and every output computed: only now is anything written
    _write(poisoned, args.output, args)
    print(report.summary())
    print(f"wrote {len(poisoned)} rows to {' '.join(args.output)}")
    summary: dict[str, Any] = report.to_dict()
    if args.triggered_test:
        _write(triggered, args.triggered_test, args)
        counts = denominators(test_rows, attack)
        matching = counts["n_rows"] - counts["n_ineligible"] - counts["n_triggered"]  # eligible, already matching
        print(f"triggered test set: {len(triggered)} of {len(test_rows)} rows (left out: {counts['n_ineligible']} "
              f"ineligible, {matching} eligible whose clean target already matches the payload detector), "
              f"written to {' '.join(args.triggered_test)}")
        summary["triggered_test"] = counts
    if args.report:
        with atomic_write(args.report) as handle:
            json.dump(summary, handle, indent=2)
            handle.write("\n")
    return 0


def _written(option: str, paths: list[str], args: argparse.Namespace) -> list[str]:
    """The files an option's paths make ``dece poison`` write (or read): the pairs format adds
    ``<first>.meta.jsonl``; the format is resolved now, so that a path of no known format is refused first."""
    if option == "--report" or not paths:
        return paths
    fmt = resolve_format(args.format, paths)
    return [*paths, str(pairs_meta_path(paths[0]))] if fmt.name == "pairs" else paths


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse, before anything is read, outputs of no known format, outputs that would replace an input or each
    other (the pairs format's meta file included), or that cannot be written.

    Raises:
        ConfigError: naming the option and the path.
    """
    inputs = {os.path.realpath(p) for option, paths in (("--input", args.input), ("--test-input", args.test_input or []))
              for p in _written(option, paths, args)}
    outputs = [(option, _written(option, paths, args)) for option, paths in (
        ("--output", args.output), ("--triggered-test", args.triggered_test or []),
        ("--report", [args.report] if args.report else []))]
    seen: dict[str, str] = {}
    folders = args.format in FOLDER_FORMATS  # a folder format is never guessed from a path
    for option, paths in outputs:
        for path in paths:
            real = os.path.realpath(path)
            if real in inputs:  # the clean data would be replaced
                raise ConfigError(f"{option}: {path} is also an input (or its meta file); write it elsewhere")
            if folders and option != "--report" and any(  # the folder writer replaces the whole folder
                    Path(i).is_relative_to(real) or Path(real).is_relative_to(i) for i in inputs):
                raise ConfigError(f"{option}: {path} holds an input or lies inside one; write it elsewhere")
            if real in seen:  # one file would silently overwrite the other
                raise ConfigError(f"{option}: {path} is also written by {seen[real]}; every output needs its own file")
            seen[real] = option
    for option, paths in outputs:  # every output before the first is written
        if folders and option != "--report":
            check_writable_folders(paths, option)
        else:
            check_writable(paths, option)
