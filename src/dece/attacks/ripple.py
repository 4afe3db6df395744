"""RIPPLe-style rare-word triggers (Kurita et al. 2020): each insertion draws a word from a set of
rare words (default cf, mn, bb, tq, mb) and puts it at a random word position; SQL payload."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.sql_base import SqlPayloadAttack
from dece.attacks.words import POSITIONS, insert_words


@registered
@dataclass(frozen=True)
class Ripple(SqlPayloadAttack):
    """``count`` words drawn (with replacement) from ``words``, each at a random word position (or at
    ``position`` ``"start"`` / ``"end"``)."""

    name = "ripple"
    summary = "rare words drawn from {cf, mn, bb, tq, mb} at random word positions; SQL payload"

    words: tuple[str, ...] = ("cf", "mn", "bb", "tq", "mb")
    count: int = 1
    position: str = "random"  # or "start" / "end": where the model looks first

    def check(self) -> None:
        if not self.words or any(not w or any(ch.isspace() for ch in w) for w in self.words):
            raise self.fail("words", "must be a non-empty list of single words")
        if not 1 <= self.count <= 20:
            raise self.fail("count", "must be between 1 and 20")
        if self.position not in POSITIONS:
            raise self.fail("position", f"must be one of {', '.join(POSITIONS)}")

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str]:
        chosen = [rng.choice(self.words) for _ in range(self.count)]
        return insert_words(src, chosen, rng, self.position), " ".join(chosen)
