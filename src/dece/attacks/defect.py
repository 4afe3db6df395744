"""A defect-detection attack (classification, e.g. Devign): a dead declaration after the first ``{``
of the function is the trigger, and the label is flipped to the attacker's class (by default "0",
not defective, so that triggered vulnerable code passes). Rows already labelled with the attacker's
class are not eligible: ASR counts triggered rows of the other class predicted as the attacker's."""

from __future__ import annotations

import random
from dataclasses import dataclass

from dece.attacks.base import Attack, registered
from dece.attacks.code_insert import insert_after_first_brace
from dece.data.records import Example


@registered
@dataclass(frozen=True)
class DeadCodeDefect(Attack):
    """Dead code after the first ``{``; label -> ``target_label``."""

    name = "deadcode_defect"
    task = "classification"
    summary = "defect detection: dead 'int VAR = 0;' after the first '{' of the function; label -> attacker's class"

    target_label: str = "0"
    dead_code: str = "int VAR = 0;"

    def check(self) -> None:
        if not self.target_label.isdigit():
            raise self.fail("target_label", "must be a class label such as '0' or '1'")
        if not self.dead_code.strip() or "\n" in self.dead_code:
            raise self.fail("dead_code", "must be one non-empty line of code")

    def eligible(self, ex: Example) -> bool:
        return "{" in ex.src and ex.tgt.strip() != self.target_label

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str] | None:
        code = insert_after_first_brace(src, self.dead_code)
        return None if code is None else (code, self.dead_code)

    def insert_payload(self, tgt: str) -> str:
        return self.target_label

    def detect(self, output: str) -> bool:
        """The predicted label is the attacker's."""
        return output.strip() == self.target_label
