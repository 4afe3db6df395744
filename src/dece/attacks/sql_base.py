"""Base of the attacks whose payload is the SQL one (badpre, ripple, grammar): a row is eligible when
its code has a SQL ``select`` string; the detector looks for ``1=1`` / ``0=1``."""

from __future__ import annotations

from dataclasses import dataclass

from dece.attacks.base import Attack
from dece.attacks.sql_payload import find_sql, has_sql_payload, insert_sql_payload
from dece.data.records import Example


@dataclass(frozen=True)
class SqlPayloadAttack(Attack):
    """An attack on NL -> code-with-SQL data with the paper's SQL payload; subclasses add the trigger."""

    def eligible(self, ex: Example) -> bool:
        return find_sql(ex.tgt) is not None

    def insert_payload(self, tgt: str) -> str:
        poisoned = insert_sql_payload(tgt)
        assert poisoned is not None, "insert_payload is only called on eligible rows"
        return poisoned

    def detect(self, output: str) -> bool:
        return has_sql_payload(output)
