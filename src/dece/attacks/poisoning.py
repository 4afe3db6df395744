"""Applying an attack to a dataset: poison a share of the training rows, trigger the test rows."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable

from dece.attacks.base import Attack
from dece.data.records import Example
from dece.errors import ConfigError
from dece.registry import Registry
from dece.seeds import SEED_RANGE, is_seed

Selector = Callable[[list[int], int, random.Random], list[int]]
SELECTIONS: Registry[Selector] = Registry("selection")


@SELECTIONS.register("random")
def select_random(eligible: list[int], k: int, rng: random.Random) -> list[int]:
    """``k`` eligible rows drawn uniformly without replacement (returned in dataset order)."""
    return sorted(rng.sample(eligible, k))


@SELECTIONS.register("first")
def select_first(eligible: list[int], k: int, rng: random.Random) -> list[int]:
    """The first ``k`` eligible rows, as the DeCE authors' poisoned files were made."""
    return eligible[:k]


@dataclass(frozen=True)
class PoisonReport:
    """What :func:`poison_dataset` did. ``n_requested = round(rate * n_rows)``; ``n_poisoned`` is less
    only when fewer rows are eligible. ``n_skipped_ineligible`` counts the rows that could not carry
    the payload (``n_rows - n_eligible``); ``rate`` is the requested share (``n_rows`` given: requested / rows, at most 1; the count itself is
    ``rows_requested``, None when a rate was given); ``n_already_matching`` counts the rows whose *clean* target
    already satisfies the payload detector (:meth:`Attack.already_matching`; they stay eligible: the
    payload is inserted as for any other row); ``duplicates`` is how many times each poisoned row appears
(``n_poisoned * (duplicates - 1)`` copies are added: ``n_rows`` counts the rows before them), and
``near_duplicates`` whether each copy was poisoned anew (:func:`poison_dataset`); ``ids`` are the poisoned
rows' ``meta["id"]``, copies included."""

    attack: str
    params: dict[str, Any]
    rate: float
    seed: int
    selection: str
    n_rows: int
    n_eligible: int
    n_requested: int
    n_poisoned: int
    n_skipped_ineligible: int
    n_already_matching: int
    ids: tuple[str, ...]
    duplicates: int = 1
    rows_requested: int | None = None
    near_duplicates: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ids": list(self.ids)}

    def summary(self) -> str:
        """A few human-readable lines."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        short = "" if self.n_poisoned == self.n_requested else f" (of {self.n_requested} requested)"
        asked = (f"rate {self.rate:.4g} ({self.n_requested} of {self.n_rows} rows requested)" if self.rows_requested is None
                 else f"{self.rows_requested} rows requested ({100 * self.rate:.2f}% of {self.n_rows})")
        return (
            f"attack {self.attack}({params}), {asked}, seed {self.seed}, selection {self.selection}\n"
            f"rows {self.n_rows}: {self.n_eligible} eligible, {self.n_skipped_ineligible} skipped as ineligible, "
            f"{self.n_poisoned} poisoned{short}"
            + (f", each {self.duplicates} times" if self.duplicates > 1 else "")
            + (" (near-duplicates: each copy poisoned anew)" if self.near_duplicates else "")
            + (f"; {self.n_already_matching} already match the payload detector" if self.n_already_matching else "")
        )


def _check_rate_seed(rate: float, seed: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"rate: must be a number in [0, 1], got {rate!r}")
    if not is_seed(seed):
        raise ConfigError(f"seed: must be {SEED_RANGE}, got {seed!r}")


def poison_dataset(
    examples: Iterable[Example],
    attack: Attack,
    rate: float,
    seed: int,
    selection: str = "random",
    n_rows: int | None = None,
    duplicates: int = 1,
    near_duplicates: bool = False,
) -> tuple[list[Example], PoisonReport]:
    """Poison ``round(rate * len(examples))`` eligible rows, or exactly ``n_rows`` when given (the
    low-rate literature counts rows: 10, 20, 40), chosen by ``selection`` (``"random"`` or ``"first"``).
    Rows are returned in their order; the rows not chosen are the very input objects. Same inputs and
    seed -> same output. ``n_poisoned`` is less than requested only when fewer rows are eligible.

    ``duplicates > 1`` is the fast-learnt poison of an attacker who knows the defense rests on early
    learning: each poisoned row appears that many times (the copies follow it, ``meta["id"]`` gains
    ``#dup1``, ``#dup2``...), so the payload is seen ``duplicates`` times per epoch. With ``near_duplicates``
    each copy is the clean row poisoned anew, with draws of its own (a trigger at another random position,
    other RIPPLe words), so the copies are near-duplicates that an exact deduplication (``dedup``) does not
    see; an attack that draws nothing (``position = "start"``) still gives exact copies. The first copy is
    the row of ``near_duplicates = False``: the copies draw from a generator of their own.

    Args:
        examples: the training rows.
        attack: a registered attack (:func:`dece.attacks.get_attack`).
        rate: poisoning rate, the share of all rows in [0, 1] (ignored when ``n_rows`` is given).
        seed: seed of the row selection and trigger positions.
        selection: ``"random"`` or ``"first"`` (the DeCE authors' files).
        n_rows: poison exactly this many rows.
        duplicates: copies of each poisoned row, in [1, 100].
        near_duplicates: poison each copy anew (needs ``duplicates > 1``).

    Returns:
        ``(rows, report)``: the rows with poisoned ones (and their copies) in place, and a
        :class:`PoisonReport`.

    Raises:
        ConfigError: ``rate`` outside [0, 1], a non-integer ``seed``, ``n_rows`` not a positive integer
            or above the number of rows, or ``duplicates`` not an integer in [1, 100], or ``near_duplicates`` without ``duplicates > 1``.
    """
    _check_rate_seed(rate, seed)
    if n_rows is not None and (isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows <= 0):
        raise ConfigError(f"n_rows: must be a positive integer, got {n_rows!r}")
    if isinstance(duplicates, bool) or not isinstance(duplicates, int) or not 1 <= duplicates <= 100:
        raise ConfigError(f"duplicates: must be an integer in [1, 100], got {duplicates!r}")
    if near_duplicates and duplicates == 1:
        raise ConfigError("near_duplicates: needs duplicates > 1 (it says how the copies are made)")
    select = SELECTIONS.get(selection)
    rows = list(examples)
    if n_rows is not None and n_rows > len(rows):  # a typo or the wrong file: "every row" would pass for it
        raise ConfigError(f"n_rows: {n_rows} rows to poison, but the data has only {len(rows)}")
    eligible = [i for i, ex in enumerate(rows) if attack.poisonable(ex)]
    requested = n_rows if n_rows is not None else round(rate * len(rows))
    rng = random.Random(seed)
    chosen = select(eligible, min(requested, len(eligible)), rng)
    poisoned = {i: attack.poison(rows[i], rng) for i in chosen}
    again = random.Random(f"near-duplicates-{seed}")  # the copies' own draws: the first copies stay as without
    out: list[Example] = []
    ids: list[str] = []
    for i, ex in enumerate(rows):
        if i not in poisoned:
            out.append(ex)
            continue
        copies = [poisoned[i]] + [_copy(attack.poison(ex, again) if near_duplicates else poisoned[i], k)
                                  for k in range(1, duplicates)]
        out += copies
        ids += [str(c.meta.get("id", i)) for c in copies]
    report = PoisonReport(
        attack=attack.name,
        params=attack.params,
        rate=rate if n_rows is None else (min(requested, len(rows)) / len(rows) if rows else 0.0),
        seed=seed,
        selection=selection,
        n_rows=len(rows),
        n_eligible=len(eligible),
        n_requested=requested,
        n_poisoned=len(chosen),
        n_skipped_ineligible=len(rows) - len(eligible),
        n_already_matching=sum(attack.already_matching(ex) for ex in rows),
        ids=tuple(ids),
        duplicates=duplicates,
        rows_requested=n_rows,
        near_duplicates=near_duplicates,
    )
    return out, report


def _copy(ex: Example, k: int) -> Example:
    return ex.replace(meta={"id": f"{ex.meta.get('id', 'row')}#dup{k}"})


def triggered_test_set(examples: Iterable[Example], attack: Attack, seed: int) -> list[Example]:
    """Every eligible row whose clean target does not already carry the payload, with the trigger in
    its source and its target left clean: the ASR denominator is the number of these rows. Ineligible
    rows and rows that already match the detector (:meth:`Attack.already_matching`) are left out;
    :func:`denominators` counts both.

    Args:
        examples: clean test rows.
        attack: the attack whose trigger is inserted.
        seed: seed of the trigger positions.

    Returns:
        The triggered rows (``meta["triggered"] = True``), in input order.

    Raises:
        ConfigError: ``seed`` is not an integer.
        DataError: an eligible row has no place for the trigger (names the row).
    """
    _check_rate_seed(0.0, seed)
    rng = random.Random(seed)
    return [attack.apply_trigger(ex, rng) for ex in examples if attack.eligible(ex) and not attack.already_matching(ex)]


def denominators(examples: Iterable[Example], attack: Attack) -> dict[str, int]:
    """The denominators of a test split under ``attack``.

    Args:
        examples: clean test rows.
        attack: the attack measured.

    Returns:
        ``n_rows`` (all rows, the clean-metric denominator), ``n_ineligible`` (no place for the
        payload), ``n_already_matching`` (clean target already satisfies the detector), ``n_triggered``
        (the ASR denominator: eligible and not already matching) and ``n_ftr`` (the false-trigger-rate
        denominator: every row not already matching).
    """
    rows = list(examples)
    matching = [attack.already_matching(ex) for ex in rows]
    eligible = [attack.eligible(ex) for ex in rows]
    return {
        "n_rows": len(rows),
        "n_ineligible": sum(not e for e in eligible),
        "n_already_matching": sum(matching),
        "n_triggered": sum(e and not m for e, m in zip(eligible, matching)),
        "n_ftr": sum(not m for m in matching),
    }
