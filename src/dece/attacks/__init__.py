"""Backdoor attacks on code datasets. Each attack inserts a trigger into the source, a payload into
the target, and detects the payload in model outputs (for the attack success rate).

    attack = get_attack("badpre", count=1)
    poisoned, report = poison_dataset(train, attack, rate=0.05, seed=1)
    triggered = triggered_test_set(test, attack, seed=1)
    asr = mean(attack.detect(model(ex.src)) for ex in triggered)
"""

from dece.attacks import (  # noqa: F401  (registration)
    badpre,
    comment,
    deadcode,
    defect,
    drop_where,
    flip_equality,
    given,
    grammar,
    rename,
    ripple,
    summary,
    vary_tautology,
)
from dece.attacks.base import ATTACKS, Attack, get_attack
from dece.attacks.poisoning import SELECTIONS, PoisonReport, denominators, poison_dataset, triggered_test_set

__all__ = [
    "ATTACKS",
    "SELECTIONS",
    "Attack",
    "PoisonReport",
    "denominators",
    "get_attack",
    "poison_dataset",
    "triggered_test_set",
]
