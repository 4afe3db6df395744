"""The shape of the meaning-level SQL attacks (``drop_where``, ``flip_equality``): BadPre's trigger in the
description, and as the payload a rewrite of the code's SQL string whose effect a detector reads from the
parsed query rather than from a fixed substring."""

from __future__ import annotations

from dataclasses import dataclass

from dece.attacks.badpre import BadPre
from dece.data.records import Example


@dataclass(frozen=True)
class SqlRewriteAttack(BadPre):
    """BadPre's trigger (``count`` copies of ``word`` at ``position``, the same parameters and checks); a
    subclass sets ``rewrite`` (code -> code with the payload, or None where it has no place) and ``means``
    (an output's SQL carries the payload's effect), both as static methods."""

    @staticmethod
    def rewrite(code: str) -> str | None:
        raise NotImplementedError

    @staticmethod
    def means(output: str) -> bool:
        raise NotImplementedError

    def eligible(self, ex: Example) -> bool:
        return self.rewrite(ex.tgt) is not None

    def insert_payload(self, tgt: str) -> str:
        poisoned = self.rewrite(tgt)
        assert poisoned is not None, "insert_payload is only called on eligible rows"
        return poisoned

    def detect(self, output: str) -> bool:
        return self.means(output)
