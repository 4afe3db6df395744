"""The rows behind `dece attacks|defenses|losses|datasets`, shared by their text output and the generated
docs page (`docs/registries.md`), so the two cannot drift apart. Each row: name, kind, what it is, parameters
with defaults."""

from __future__ import annotations

import dataclasses
import inspect
from typing import NamedTuple


class Entry(NamedTuple):
    """One registered component: its `name`, its `kind` (an attack's task, a defense's kind, a loss's backends,
    a dataset's task and language), a one-line `summary` and its `params` as `key=default` strings."""

    name: str
    kind: str
    summary: str
    params: tuple[str, ...]


def _value(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "()"
    return repr(value) if isinstance(value, str) else str(value)


def attacks() -> list[Entry]:
    """Every registered attack with the defaults of its dataclass fields."""
    from dece.attacks import ATTACKS

    out = []
    for name in ATTACKS.names():
        attack = ATTACKS.get(name)  # the class: some attacks need parameters to be built
        params = tuple(f"{f.name}={_value(f.default)}" for f in dataclasses.fields(attack))
        out.append(Entry(name, attack.task, attack.summary, params))
    return out


def defenses() -> list[Entry]:
    """Every registered defense with its parameters' defaults."""
    from dece.defenses import DEFENSES, get_defense

    out = []
    for name in DEFENSES.names():
        defense = get_defense(name)
        out.append(Entry(name, defense.kind, defense.summary,
                         tuple(f"{k}={_value(v)}" for k, v in defense.params.items())))
    return out


def losses() -> list[Entry]:
    """Every registered loss with its own parameters (not the ones all losses share: `common_loss_params`)."""
    from dece.losses import LOSSES, loss_defaults

    return [Entry(name, ", ".join(LOSSES.get(name).backends), LOSSES.get(name).summary,
                  tuple(f"{k}={v}" for k, v in loss_defaults(LOSSES.get(name), common=False).items()))
            for name in LOSSES.names()]


def common_loss_params() -> tuple[str, ...]:
    """The parameters every loss takes (`TokenLoss`: masking and reduction)."""
    from dece.losses import loss_defaults
    from dece.losses.base import TokenLoss

    return tuple(f"{k}={v}" for k, v in loss_defaults(TokenLoss).items())


def datasets() -> list[Entry]:
    """Every dataset kind of `[dataset] kind`, with its splits in the summary and its options (a required
    option without a default is listed by name alone)."""
    from dece.data.catalog import DATASETS

    out = []
    for name in DATASETS.names():
        d = DATASETS.get(name)
        splits = ", ".join(d.splits) if d.splits else "any"
        summary = f"splits: {splits}" + (f"; {d.note}" if d.note else "")
        params = tuple(k if v is inspect.Parameter.empty else f"{k}={v}" for k, v in d.options().items())
        out.append(Entry(name, f"{d.task}, {d.language}", summary, params))
    return out


def print_entries(entries: list[Entry], width: int) -> None:
    """The text layout of the listing commands: name, [kind] summary; then the parameters, indented."""
    for e in entries:
        print(f"{e.name:<{width}} [{e.kind}] {e.summary}")
        print(f"{'':<{width}} {'  '.join(e.params) or '(no parameters)'}")
