"""What every defense is, and the registry that composes them into experiment arms.

Three kinds, by where they act in the pipeline:

* **data** defenses choose training rows to remove (:meth:`DataDefense.select` -> :class:`Selection`).
  ``bki``, ``spectral_signature`` and ``activation_clustering`` look at the rows through a *reference
  model* (one fine-tuned with CE on the same, possibly poisoned, rows; :class:`RepresentationDefense`);
  ``dece_filter`` reads the per-row losses a DeCE-trained arm of the same run recorded; ``dedup`` reads
  only the rows.
* **input** defenses (``onion``, ``paraphrase``) rewrite the test inputs before generation:
  :meth:`InputDefense.fit` on clean training sources (where they need it), then
  :meth:`InputDefense.transform`.
* **training** defenses (``moderate_fitting``) change how the arm is trained.

The loss-based baselines (``label_smoothing``, ``gce``, ``in_trust``) are losses of
:mod:`dece.losses`, not entries here. Defenses are dataclasses whose fields are their parameters,
checked in :meth:`Defense.check`; :func:`get_defense` builds one by name and type-checks the values.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import torch

from dece.component import Component, build
from dece.data.records import Example
from dece.errors import ConfigError
from dece.registry import Registry

KINDS = ("data", "input", "training")


@dataclass
class Defense(Component):
    """Base of the defenses. A subclass sets ``name``, ``kind`` and ``summary``, declares its parameters
    as dataclass fields with defaults (and documents them in its docstring), and checks their ranges in
    :meth:`check`. State learnt by ``fit`` lives in non-init fields."""

    family: ClassVar[str] = "defense"
    kind: ClassVar[str]


# ---------------------------------------------------------------------------------------------------------
# data defenses


@dataclass
class DataContext:
    """What a data defense may look at besides the rows.

    ``encode(texts) -> [len(texts), d]`` returns the reference model's representation of source texts
    (see :func:`dece.defenses.encode_texts`); ``representations`` may be given instead, one row per
    training row, in order (synthetic tests do this). ``poison_rate`` is the experiment's configured
    poisoning rate, for defenses that assume it is known (spectral signature). ``row_losses(rows)``
    returns, for each recorded epoch of a DeCE-trained arm, every row's largest token CE (in ``rows``'
    order), for defenses that read training dynamics (``reads = "row_losses"``); ``token_losses(rows)``
    returns that arm's final model's CE on each target token of each row and the tokens, aligned
    (:func:`dece.experiments.token_losses.model_token_losses`)."""

    encode: Callable[[Sequence[str]], torch.Tensor] | None = None
    representations: torch.Tensor | None = None
    poison_rate: float | None = None
    row_losses: Callable[[Sequence[Example]], list[list[float]]] | None = None
    token_losses: Callable[[Sequence[Example]], tuple[list[list[float]], list[list[str]]]] | None = None

    def represent(self, rows: Sequence[Example]) -> torch.Tensor:
        """The representations of ``rows`` (float32, ``[len(rows), d]``)."""
        if self.representations is not None:
            reps = self.representations
            if reps.ndim != 2 or reps.shape[0] != len(rows):
                raise ValueError(f"representations must have shape [{len(rows)}, d], got {tuple(reps.shape)}")
            return reps.float()
        if self.encode is None:
            raise ValueError("the defense needs representations: give DataContext an encode function or representations")
        return self.encode([r.src for r in rows]).float()


@dataclass(frozen=True)
class Selection:
    """What a data defense chose: the removed rows' ``meta["id"]`` (in row order), a suspicion score
    per removed row, and defense-specific ``details`` (keywords, cluster sizes, thresholds...)."""

    ids: tuple[str, ...]
    scores: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


def row_ids(rows: Sequence[Example]) -> list[str]:
    """The rows' ``meta["id"]``; every row needs a unique one for its removal to be reported."""
    ids = [r.meta.get("id") for r in rows]
    if any(i is None for i in ids):
        raise ValueError("every row needs meta['id'] for a data defense to report what it removed")
    text = [str(i) for i in ids]
    if len(set(text)) != len(text):  # as text: 1 and "1" would name the same removed row
        raise ValueError("row ids (meta['id']) must be unique (as text) for a data defense")
    return text


@dataclass
class DataDefense(Defense):
    """A defense that removes training rows; ``reads`` says what of :class:`DataContext` it needs:
    ``"representations"`` (a reference model's), ``"row_losses"`` (a DeCE arm's training dynamics) or
    ``"rows"`` (nothing but the rows themselves: ``dedup``)."""

    kind: ClassVar[str] = "data"
    reads: ClassVar[str] = "representations"

    @abstractmethod
    def select(self, rows: Sequence[Example], context: DataContext) -> Selection:
        """The rows to remove from the training set."""


@dataclass
class RepresentationDefense(DataDefense):
    """A data defense that looks at a reference model's states, chosen by the parameter
    ``representation`` (see :func:`dece.defenses.encode_texts`): ``"source"`` (default; mean-pooled
    encoder states, or a decoder-only model's state at the prompt's last token) or ``"first_step"`` (the
    final hidden state the first target token is predicted from: the decoder's at step 0 for
    encoder-decoder models, the same as ``"source"`` for decoder-only ones)."""

    representation: str = "source"

    def __post_init__(self) -> None:
        from dece.defenses.representations import REPRESENTATIONS

        if self.representation not in REPRESENTATIONS:
            raise self.fail("representation", f"must be one of {', '.join(REPRESENTATIONS)}")
        super().__post_init__()


def removal_budget(defense: Defense, n: int, rate: float | None, multiplier: float, poison_rate: float | None) -> int:
    """``ceil(multiplier * rate * n)`` rows out of ``n`` (at most ``n - 1``); ``rate`` None takes the
    experiment's ``poison_rate``."""
    rate = rate if rate is not None else poison_rate
    if rate is None:
        raise ConfigError(f"defense {defense.name!r}, parameter 'rate': no attack rate is known here; set it")
    return max(0, min(n - 1, math.ceil(multiplier * rate * n - 1e-9)))


# ---------------------------------------------------------------------------------------------------------
# input defenses


@dataclass
class InputDefense(Defense):
    kind: ClassVar[str] = "input"

    def fit(self, sources: Sequence[str]) -> "InputDefense":
        """Learn what the defense needs from clean training sources (default: nothing); returns self."""
        return self

    @abstractmethod
    def transform(self, sources: Sequence[str]) -> list[str]:
        """One rewritten source per source, in order."""


# ---------------------------------------------------------------------------------------------------------
# training defenses


@dataclass
class TrainingDefense(Defense):
    kind: ClassVar[str] = "training"

    @property
    def lr_factor(self) -> float:
        """Multiplies the arm's learning rate (1 = unchanged)."""
        return 1.0


# ---------------------------------------------------------------------------------------------------------
# registry


DEFENSES: Registry[type[Defense]] = Registry("defense")


def registered(cls: type[Defense]) -> type[Defense]:
    """Class decorator: add a defense to ``DEFENSES`` under its ``name``."""
    assert cls.kind in KINDS, cls.kind
    DEFENSES.add(cls.name, cls)
    return cls


def get_defense(name: str, **params: Any) -> Defense:
    """The defense ``name`` with ``params`` (unset ones take their defaults), checked by the rule of
    :mod:`dece.component`. An unknown name lists the valid ones; an unknown parameter, a value of the
    wrong type or out of range raises :class:`ConfigError` naming the parameter. Nothing heavy (a
    language model) is loaded here."""
    return build(DEFENSES, "defense", name, params)
