"""What every attack is: a trigger inserted into the source, a payload inserted into the target, and a
detector telling whether a model's output carries the payload (what the attack success rate counts).
Attacks are frozen dataclasses whose fields are their parameters, registered by name in ``ATTACKS``."""

from __future__ import annotations

import dataclasses
import random
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from dece.data.records import Example
from dece.errors import ConfigError, DataError
from dece.registry import Registry


@dataclass(frozen=True)
class Attack(ABC):
    """Base of the attacks. A subclass sets ``name``, ``task`` and ``summary``, declares its parameters
    as dataclass fields (with defaults), checks them in :meth:`check`, and implements the four hooks
    :meth:`eligible`, :meth:`insert_trigger`, :meth:`insert_payload` and :meth:`detect`."""

    name: ClassVar[str]
    task: ClassVar[str] = "generation"  # or "classification"
    summary: ClassVar[str]  # one line for `dece attacks`

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the parameter whose value is out of range."""

    def fail(self, param: str, problem: str) -> ConfigError:
        """The error for a bad parameter value."""
        return ConfigError(f"attack {self.name!r}, parameter {param!r}: {problem} (got {getattr(self, param)!r})")

    @property
    def params(self) -> dict[str, Any]:
        """The parameters and their values."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> str:
        """One line: name, parameters, what it does."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({params}): {self.summary}"

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
        if not self.eligible(ex):
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


def _coerce(attack: str, key: str, value: Any, kind: Any) -> Any:
    """``value`` checked against the parameter's declared type. One rule for config files and the CLI
    (whose ``--param`` values are TOML literals, as ``--set``'s): ``"3"`` is text, not an integer. A list
    of strings may also be given as one comma-separated string."""
    problem = f"attack {attack!r}, parameter {key!r}"
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{problem}: expected an integer, got {value!r}")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{problem}: expected a string, got {value!r}")
    if typing.get_origin(kind) is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and all(isinstance(item, str) for item in items):
            return tuple(item.strip() for item in items if item.strip())
        raise ConfigError(f"{problem}: expected a list of strings (or 'a,b,c'), got {value!r}")
    raise TypeError(f"attack {attack!r}: parameter {key!r} has an unsupported type {kind!r}")


def parameter_types(cls: type[Attack]) -> dict[str, Any]:
    """Parameter name -> declared type."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def get_attack(name: str, **params: Any) -> Attack:
    """The attack ``name`` with ``params`` (checked; strings such as CLI values are converted).
    An unknown name lists the valid ones; an unknown parameter or a bad value raises
    :class:`ConfigError` naming it."""
    cls = ATTACKS.get(name)
    types = parameter_types(cls)
    for key in params:
        if key not in types:
            valid = ", ".join(types) or "none"
            raise ConfigError(f"attack {name!r}: unknown parameter {key!r}; valid parameters: {valid}")
    return cls(**{key: _coerce(name, key, value, types[key]) for key, value in params.items()})
