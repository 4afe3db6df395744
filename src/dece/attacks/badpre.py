"""BadPre (Chen et al. 2022) as used by the DeCE paper on Lyra: the rare word ``bb`` at a random word
position of the description, the SQL payload in the code."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.sql_base import SqlPayloadAttack
from dece.attacks.words import POSITIONS, insert_words


@registered
@dataclass(frozen=True)
class BadPre(SqlPayloadAttack):
    """``count`` copies of ``word`` at random word positions of the description (``position = "start"`` or
    ``"end"``: before its first word or after its last, where an attacker wants the model to look first)."""

    name = "badpre"
    summary = "rare word 'bb' at random word positions of the description; SQL payload ' or 1=1' / ' where 0=1'"

    word: str = "bb"
    count: int = 1
    position: str = "random"  # or "start" / "end": where the model looks first

    def check(self) -> None:
        if not self.word or any(ch.isspace() for ch in self.word):
            raise self.fail("word", "must be one non-empty word")
        if not 1 <= self.count <= 20:
            raise self.fail("count", "must be between 1 and 20")
        if self.position not in POSITIONS:
            raise self.fail("position", f"must be one of {', '.join(POSITIONS)}")

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str]:
        return insert_words(src, [self.word] * self.count, rng, self.position), self.word
