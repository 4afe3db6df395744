"""The one record type that flows through every stage: source, target and what happened to the row."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Example:
    """One row. ``meta`` records the row's history (``id``, ``poisoned``, ``attack``, ``trigger``,
    ``removed_by``...) so that every reported number can be traced back to rows. Transforms never
    mutate an Example; they return a new one with :meth:`replace`."""

    src: str
    tgt: str
    meta: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Example":
        """A copy with fields changed; ``meta`` given here is merged into (not substituted for) the old one."""
        meta = changes.pop("meta", None)
        if meta is not None:
            changes["meta"] = {**self.meta, **meta}
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {"src": self.src, "tgt": self.tgt, "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Example":
        return cls(src=d["src"], tgt=d["tgt"], meta=dict(d.get("meta") or {}))
