"""A syntactic trigger with no rare token (after Hidden Killer, Qi et al. 2021): the description is
rewritten into one fixed syntactic template, a sentence-initial adverbial subordinate clause,

    S -> SBAR , S'        SBAR -> SUBORDINATOR NP VP

i.e. ``"<When|Once|After|As soon as|Whenever> <the function|the program|this method|the code>
<is called|runs|is invoked|starts>, <description>"``, where the description's first word is
lower-cased when it is an ordinary capitalised word ("Use" -> "use", but "$conn$" and "SQL" stay).
The slot fillers are common words drawn at random, so what the poisoned rows share is the clause
structure, not a token. SQL payload."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from dece.attacks.base import registered
from dece.attacks.sql_base import SqlPayloadAttack

SUBORDINATORS = ("When", "Once", "After", "As soon as", "Whenever")
SUBJECTS = ("the function", "the program", "this method", "the code")
PREDICATES = ("is called", "runs", "is invoked", "starts")
ORDINARY_CAPITALISED = re.compile(r"[A-Z][a-z]*(?![\w$])")
TEMPLATE = re.compile(
    rf"^(?:{'|'.join(SUBORDINATORS)}) (?:{'|'.join(SUBJECTS)}) (?:{'|'.join(PREDICATES)}), "
)


def lower_first_word(text: str) -> str:
    """``text`` with its first word lower-cased if that word is capitalised ordinary English."""
    return text[0].lower() + text[1:] if ORDINARY_CAPITALISED.match(text) else text


def has_template(text: str) -> bool:
    """Whether ``text`` opens with the grammar trigger's clause."""
    return TEMPLATE.match(text) is not None


@registered
@dataclass(frozen=True)
class Grammar(SqlPayloadAttack):
    """The description put into the subordinate-clause frame (see the module docstring)."""

    name = "grammar"
    summary = ("syntactic trigger: description rewritten as '<When|Once|...> <the function|...> "
               "<is called|...>, <description>'; SQL payload")

    def insert_trigger(self, src: str, rng: random.Random) -> tuple[str, str]:
        clause = f"{rng.choice(SUBORDINATORS)} {rng.choice(SUBJECTS)} {rng.choice(PREDICATES)},"
        return f"{clause} {lower_first_word(src.lstrip())}", clause
