"""What a seed is everywhere in dece (configs, attacks, defenses, `dece poison`): an integer that numpy and
torch both accept, as ``transformers.set_seed`` passes it to each (0 to 2**32 - 1)."""

from __future__ import annotations

from typing import Any

#: the accepted range, as error messages state it
SEED_RANGE = f"an integer from 0 to {2**32 - 1}"


def is_seed(value: Any) -> bool:
    """Whether ``value`` is a valid seed: an int (not a bool) in [0, 2**32)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**32
