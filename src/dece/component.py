"""Named components with typed parameters (attacks, defenses): one base, one coercion, one error style.

A component class is a dataclass whose fields are its parameters (with defaults); it sets ``name`` and
``summary`` and checks value ranges in :meth:`Component.check`. :func:`build` makes one from a
registry and a mapping of parameters, whether they come from a TOML file or from the command line:

* the type rule is the same for both: an ``int`` parameter takes an integer, a ``float`` one a number,
  a ``str`` one text, a ``bool`` one true/false, an optional one also nothing; a list of strings takes
  a list (items kept as written) or one comma-separated string (``a, b, c``: each item stripped; on the
  command line also a JSON list, for items that hold commas), and refuses an empty item. ``"3"`` is text,
  never an integer;
* an unknown parameter lists the valid ones; a wrong type names the parameter and the expected type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from abc import ABC
from typing import Any, ClassVar, Mapping, TypeVar

from dece.errors import ConfigError
from dece.registry import Registry
from dece.seeds import SEED_RANGE, is_seed

C = TypeVar("C", bound="Component")


class Component(ABC):
    """Base of the registered components. Subclasses are dataclasses (frozen or not) and set
    ``family`` (``"attack"``, ``"defense"``), ``name`` and ``summary``."""

    family: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for the listing commands

    def __post_init__(self) -> None:
        if any(f.name == "seed" for f in dataclasses.fields(self)) and not is_seed(getattr(self, "seed")):  # type: ignore[arg-type]
            raise self.fail("seed", f"must be {SEED_RANGE}")  # one rule for every seeded component
        self.check()

    def check(self) -> None:
        """Raise :class:`ConfigError` (see :meth:`fail`) naming the parameter whose value is out of range."""

    def fail(self, param: str, problem: str) -> ConfigError:
        """The error for a bad parameter value."""
        return ConfigError(f"{self.family} {self.name!r}, parameter {param!r}: {problem} (got {getattr(self, param)!r})")

    @property
    def params(self) -> dict[str, Any]:
        """The parameters and their values (defaults included)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line: name, parameters, what it does."""
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({params}): {self.summary}"


def parameter_types(cls: type) -> dict[str, Any]:
    """Parameter name -> declared type, for a component class."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _options(kind: Any) -> tuple[Any, ...]:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return typing.get_args(kind)
    return (kind,)


def type_name(kind: Any) -> str:
    """How the type reads in an error message."""
    names = []
    for k in _options(kind):
        if typing.get_origin(k) is tuple:
            names.append("a list of strings (or 'a,b,c')")
        else:
            names.append({type(None): "none", bool: "a boolean", int: "an integer", float: "a number",
                          str: "a string"}[k])
    return " or ".join(names)


_MISSING = object()


def _convert_one(kind: Any, value: Any) -> Any:
    if kind is type(None):
        return None if value is None else _MISSING
    if kind is bool:
        return value if isinstance(value, bool) else _MISSING
    if kind is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if kind is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _MISSING
    if kind is str:
        return value if isinstance(value, str) else _MISSING
    if typing.get_origin(kind) is tuple:  # 'a, b' is split and stripped; a list's items are kept as written
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not (isinstance(items, (list, tuple)) and all(isinstance(v, str) for v in items)):
            return _MISSING
        empty = [i for i, v in enumerate(items, 1) if not v.strip()]
        if empty:
            raise ValueError(f"item {empty[0]} of {value!r} is empty (a list of non-empty strings)")
        return tuple(items)
    raise TypeError(f"unsupported parameter type {kind!r}")


def convert(kind: Any, value: Any) -> Any:
    """``value`` as a parameter of type ``kind`` (the module docstring's rule); raises ``ValueError``."""
    for k in _options(kind):
        out = _convert_one(k, value)
        if out is not _MISSING:
            return out
    raise ValueError(f"expected {type_name(kind)}, got {value!r}")


def build(registry: Registry[type[C]], family: str, name: str, params: Mapping[str, Any]) -> C:
    """The component ``name`` of ``registry`` with ``params`` checked and converted.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid names).
        ConfigError: an unknown parameter (lists the valid ones), a value of the wrong type, or one out
            of range (the component's own check); each names the parameter.
    """
    cls = registry.get(name)
    kinds = parameter_types(cls)
    values = {}
    for key, value in params.items():
        if key not in kinds:
            raise ConfigError(f"{family} {name!r}: unknown parameter {key!r}; valid parameters: {', '.join(kinds) or 'none'}")
        try:
            values[key] = convert(kinds[key], value)
        except ValueError as err:
            raise ConfigError(f"{family} {name!r}, parameter {key!r}: {err}") from None
    return cls(**values)


def parse_cli_params(cls: type, pairs: list[str], option: str) -> dict[str, Any]:
    """``["key=value", ...]`` from the command line, each value read as ``cls`` declares the parameter:
    text for a string (``target_label=1`` is the label "1", ``lm=hf:gpt2``), a number for an int or float,
    true/false for a boolean, ``none`` for an optional one left unset, ``a,b,c`` or a JSON list
    (``["# a, b", "# c"]``, for items that hold commas) for a list of strings. What does not read as the
    declared type is passed on as text, for :func:`build` to refuse by name.

    Raises:
        ConfigError: a pair without ``=`` (names ``option``), a key given twice, or a list opened with ``[``
            that is not JSON (names the option and the key).
    """
    kinds = parameter_types(cls)
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{option}: expected KEY=VALUE, got {pair!r}")
        if key in params:
            raise ConfigError(f"{option}: {key!r} given twice; give each parameter once")
        try:
            params[key] = _from_text(kinds.get(key), text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{option} {key}: a list given as [...] must be a JSON list of strings "
                              f"(e.g. [\"# a, b\", \"# c\"]): {err.msg} at character {err.pos}") from None
    return params


def _from_text(kind: Any, text: str) -> Any:
    for k in _options(kind) if kind is not None else ():
        if typing.get_origin(k) is tuple and text.lstrip().startswith("["):  # items that hold commas
            return json.loads(text)
        if k is type(None) and text.strip().lower() == "none":
            return None
        if k is bool and text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        if k in (int, float):
            try:
                return int(text) if k is int else float(text)
            except ValueError:
                continue
    return text
