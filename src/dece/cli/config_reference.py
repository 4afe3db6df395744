"""`dece config-reference`: print the configuration reference (Markdown), generated from the config schema;
`dece config-reference > docs/config.md` refreshes the docs."""

from __future__ import annotations

import argparse

from dece.experiments.config import reference_markdown


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config-reference", help="print every config key with its default and meaning (Markdown)",
                       description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(reference_markdown(), end="")
    return 0
