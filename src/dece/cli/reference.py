"""`dece reference`: the generated reference pages of the docs (Markdown): the configuration (from the config
schema), the command line (from argparse) and the registries (attacks, defenses, losses, datasets).
`dece reference --write docs` refreshes docs/config.md, docs/cli.md and docs/registries.md; a test checks
they are current, so the docs cannot drift from the code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from dece.cli import listing


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
        if action.option_strings and action.nargs != 0:
            name += f" {action.metavar or action.dest.upper()}"
        default = "" if action.default in (None, argparse.SUPPRESS, False) or not action.option_strings \
            else f"`{action.default}`"
        rows.append(f"| {_cell(name)} | {_cell(default)} | {_cell((action.help or '').replace('%%', '%'))} |")
    return rows


def cli_markdown() -> str:
    """The CLI reference: every `dece` sub-command with its description, usage and options.

    Returns:
        Markdown text, one section per sub-command in the order of `dece --help`.
    """
    from dece.cli import build_parser

    parser = build_parser()
    out = ["# Command-line reference", "",
           "Generated from the `dece` argument parser (`dece reference --write docs`); a test checks that it is "
           "current. Every command exits 2 with one line naming the file, row or key on an expected failure "
           "(`--debug` shows the traceback).", ""]
    for name, sub in _subcommands(parser).items():
        out += [f"## dece {name}", "", (sub.description or "").strip(), "", "```", sub.format_usage().strip(), "```", ""]
        rows = _option_rows(sub)
        if rows:
            out += ["| argument | default | meaning |", "|---|---|---|", *rows, ""]
        if sub.epilog:  # worked examples after the options, as `--help` prints them
            out += ["```", sub.epilog.strip(), "```", ""]
    return "\n".join(out).replace("\n\n\n", "\n\n")


def _table(entries: list[listing.Entry], kind: str) -> list[str]:
    rows = [f"| `{e.name}` | {_cell(e.kind)} | {_cell(e.summary)} | {_cell(', '.join(f'`{p}`' for p in e.params) or '-')} |"
            for e in entries]
    return [f"| name | {kind} | what it is | parameters (default) |", "|---|---|---|---|", *rows, ""]


def registries_markdown() -> str:
    """The registries' reference: one table each for attacks, defenses, losses and dataset kinds.

    Returns:
        Markdown text with the same rows as `dece attacks|defenses|losses|datasets`.
    """
    return "\n".join([
        "# Registries", "",
        "Generated from the registries (`dece reference --write docs`); the same rows as `dece attacks`, "
        "`dece defenses`, `dece losses` and `dece datasets`. A config names an entry (`[attack] name`, an arm's "
        "`defense` or `loss`, `[dataset] kind`) and sets its parameters (`params`, `defense_params`, "
        "`loss_params`, `options`); an unknown name or parameter is refused with the valid ones.", "",
        "## Attacks (`[attack] name`)", "", *_table(listing.attacks(), "task"),
        "## Defenses (an arm's `defense`)", "", *_table(listing.defenses(), "kind"),
        "## Losses (an arm's `loss`)", "", *_table(listing.losses(), "backends"),
        f"Every loss also takes {', '.join(f'`{p}`' for p in listing.common_loss_params())}.", "",
        "## Datasets (`[dataset] kind`)", "", *_table(listing.datasets(), "task, language"),
    ])


def _config_markdown() -> str:
    from dece.experiments.config import reference_markdown

    return reference_markdown()


# page name -> (file under the docs folder, generator)
PAGES: dict[str, tuple[str, Callable[[], str]]] = {
    "config": ("config.md", _config_markdown),
    "cli": ("cli.md", cli_markdown),
    "registries": ("registries.md", registries_markdown),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reference", help="print or write the generated reference pages of the docs (Markdown)",
                       description=__doc__)
    p.add_argument("page", nargs="?", choices=sorted(PAGES), help="the page to print (default: all three)")
    p.add_argument("--write", metavar="DIR", help="write config.md, cli.md and registries.md into DIR instead")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [args.page] if args.page else list(PAGES)
    if args.write:
        from dece.cli.common import check_writable_dir
        from dece.data.io.common import atomic_write

        folder = Path(args.write)
        check_writable_dir(folder, "--write")
        for name in names:
            filename, make = PAGES[name]
            with atomic_write(folder / filename) as handle:
                handle.write(make().rstrip("\n") + "\n")
            print(f"wrote {folder / filename}")
        return 0
    for name in names:
        print(PAGES[name][1]().rstrip("\n"))
    return 0
