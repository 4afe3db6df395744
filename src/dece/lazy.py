"""Package attributes imported on first use (PEP 562), so that importing a light submodule (a config
schema) does not import the heavy ones (torch, transformers) that its package also exports."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module path) on first use.

    Raises (from the returned function):
        AttributeError: ``name`` is not exported.
    """
    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
