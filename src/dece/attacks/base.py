"""What every attack is: a trigger inserted into the source, a payload inserted into the target, and a
detector telling whether a model's output carries the payload (what the attack success rate counts).
Attacks are frozen dataclasses whose fields are their parameters, registered by name in ``ATTACKS``."""

from __future__ import annotations

import random
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from dece.component import Component, build
from dece.data.records import Example
from dece.errors import DataError
from dece.registry import Registry


@dataclass(frozen=True)
class Attack(Component):
    """Base of the attacks. A subclass sets ``name``, ``task`` and ``summary``, declares its parameters
    as dataclass fields (with defaults), checks them in :meth:`check`, and implements the four hooks
    :meth:`eligible`, :meth:`insert_trigger`, :meth:`insert_payload` and :meth:`detect`."""

    family: ClassVar[str] = "attack"
    task: ClassVar[str] = "generation"  # or "classification"
    #: True for data poisoned elsewhere (``given``): the training rows are used as they are and the
    #: triggered test rows are read from a split of their own
    supplies_data: ClassVar[bool] = False
    #: raised whenever :meth:`detect` (or :meth:`already_matching`) changes what it counts: it is part of
    #: every arm's fingerprint (:func:`dece.experiments.store.arm_fingerprint`), so finished arms are scored
    #: again with the new detector (their models are kept) instead of keeping metrics counted by the old one
    detector_version: ClassVar[int] = 1

    @abstractmethod
    def eligible(self, ex: Example) -> bool:
        """Whether the payload can be inserted into ``ex`` (rows that cannot are skipped and counted)."""

    @abstractmethod
    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str] | None:
        """``(src with the trigger, the trigger text)``, or None when ``src`` has no place for it."""

    @abstractmethod
    def insert_payload(self, tgt: str) -> str:
        """``tgt`` with the payload; only called on eligible rows."""

    @abstractmethod
    def detect(self, output: str) -> bool:
        """Whether a model output carries the payload."""

    def poisonable(self, ex: Example) -> bool:
        """Whether ``ex`` may be chosen as a poisoned *training* row: :meth:`eligible` for the dirty-label
        attacks; a clean-label attack overrides it (it poisons rows whose target already carries the
        payload's effect, and changes no target)."""
        return self.eligible(ex)

    def already_matching(self, ex: Example) -> bool:
        """Whether the *clean* target of ``ex`` already satisfies :meth:`detect` (e.g. SQL that has a
        ``where 1=1`` of its own). Such rows cannot measure an attack: a backdoor-free model that copies
        the reference would count as a hit. They are left out of the triggered test set (the ASR
        denominator) and of the false-trigger-rate denominator, and counted as ``n_already_matching``."""
        return bool(self.detect(ex.tgt))

    def _triggered(self, ex: Example, rng: random.Random) -> tuple[str, str]:
        result = self.insert_trigger(ex.src, rng)
        if result is None:
            raise DataError(
                f"row {ex.meta.get('id')!r}, field 'src': attack {self.name!r} finds no place for its trigger"
            )
        return result

    def poison(self, ex: Example, rng: random.Random) -> Example:
        """``ex`` with the trigger in ``src`` and the payload in ``tgt``; meta gains ``poisoned``,
        ``attack`` and ``trigger``. Raises :class:`DataError` for an ineligible row."""
        if not self.poisonable(ex):
            raise DataError(f"row {ex.meta.get('id')!r}, field 'tgt': attack {self.name!r} cannot insert its payload")
        src, trigger = self._triggered(ex, rng)
        meta = {"poisoned": True, "attack": self.name, "trigger": trigger}
        return ex.replace(src=src, tgt=self.insert_payload(ex.tgt), meta=meta)

    def apply_trigger(self, ex: Example, rng: random.Random) -> Example:
        """``ex`` with the trigger in ``src`` and ``tgt`` untouched (a triggered test row); meta gains
        ``triggered``, ``attack`` and ``trigger``."""
        src, trigger = self._triggered(ex, rng)
        return ex.replace(src=src, meta={"triggered": True, "attack": self.name, "trigger": trigger})


ATTACKS: Registry[type[Attack]] = Registry("attack")


def registered(cls: type[Attack]) -> type[Attack]:
    """Class decorator: add an attack to ``ATTACKS`` under its ``name``."""
    ATTACKS.add(cls.name, cls)
    return cls


def get_attack(name: str, **params: Any) -> Attack:
    """The attack ``name`` with ``params``, checked by the rule of :mod:`dece.component` (the same for
    TOML values and CLI strings). An unknown name lists the valid ones; an unknown parameter or a bad
    value raises :class:`ConfigError` naming it."""
    return build(ATTACKS, "attack", name, params)
