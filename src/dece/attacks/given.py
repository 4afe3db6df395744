"""Data that is already poisoned: a poisoned training set made by another tool or published with a paper,
or a suspect dataset without any labels. Nothing is inserted; the attack only says how to measure.

* The training split is used as it is. Rows whose ``meta[poisoned_field]`` is true are the known
  poisoned rows (for the audit's precision and recall and the defenses' detection reports); a user's
  unlabelled data simply has none.
* The triggered test set is another split of the same dataset (``triggered_split``, e.g. the file
  ``data/test.triggered.jsonl`` of a ``jsonl`` dataset whose path is ``data/{split}.jsonl``).
* The payload detector is a registered attack's (``detector = "badpre"``) or any of ``patterns``
  (regular expressions, searched in the output).

ASR, FTR and their denominators follow the same rules as for the other attacks: triggered rows whose
clean target already satisfies the detector, and clean rows likewise, leave the denominators.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from typing import ClassVar

from dece.attacks.base import ATTACKS, Attack, get_attack, registered
from dece.data.records import Example


@registered
@dataclass(frozen=True)
class Given(Attack):
    """Already-poisoned data: the rows as they are, a triggered split, a detector."""

    name = "given"
    summary = "data poisoned elsewhere: train as given, triggered test split, a registered attack's detector or regexes"
    supplies_data: ClassVar[bool] = True

    triggered_split: str = "test.triggered"
    detector: str = ""
    patterns: tuple[str, ...] = ()
    poisoned_field: str = "poisoned"

    def check(self) -> None:
        if bool(self.detector) == bool(self.patterns):
            raise self.fail("detector", "give either detector (a registered attack's name) or patterns (regexes)")
        if self.detector and (self.detector not in ATTACKS or self.detector == self.name):
            raise self.fail("detector", f"must be one of {', '.join(n for n in ATTACKS.names() if n != self.name)}")
        for pattern in self.patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise self.fail("patterns", f"{pattern!r} is not a regular expression ({err})") from None
        if not self.triggered_split.strip():
            raise self.fail("triggered_split", "must name the split that holds the triggered test rows")

    def eligible(self, ex: Example) -> bool:
        return True

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str]:
        return src, ""  # the triggered rows come with their trigger

    def insert_payload(self, tgt: str) -> str:
        return tgt  # the poisoned rows come with their payload

    def detect(self, output: str) -> bool:
        if self.detector:
            return _registered_detector(self.detector)(output)
        return any(re.search(p, output) for p in self.patterns)

    def known_poisoned(self, ex: Example) -> bool:
        """Whether ``ex`` is marked as poisoned in its ``meta`` (``poisoned_field``)."""
        return bool(ex.meta.get(self.poisoned_field))


@functools.lru_cache(maxsize=None)
def _registered_detector(name: str):
    return get_attack(name).detect
