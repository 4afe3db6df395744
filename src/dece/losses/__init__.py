"""The loss family: DeCE and the baselines it is compared with, looked up by name.

>>> from dece.losses import get_loss
>>> loss_fn = get_loss("dece", alpha_base=0.985, label_smoothing=0.05)
>>> loss = loss_fn(logits, labels, epoch=1)

Every loss is a :class:`~dece.losses.base.TokenLoss`: ``forward(logits, target, epoch=None)``,
``ignore_index=-100`` and ``reduction`` as in ``torch.nn.functional.cross_entropy``.
"""

from __future__ import annotations

import inspect
from typing import Any

from dece.losses.base import TokenLoss
from dece.losses.baselines import CELoss, GCELoss, InTrustLoss, LabelSmoothingLoss, SCELoss
from dece.losses.dece import DeCELoss, dece_alpha, dece_loss
from dece.losses.dece_auto import DeCEAutoLoss, PlateauTrigger
from dece.losses.fused import FusedLinearLoss, fused_linear_dece, fused_linear_row_loss
from dece.errors import ConfigError
from dece.registry import Registry

LOSSES: Registry[type[TokenLoss]] = Registry("loss")
LOSSES.add("ce", CELoss)
LOSSES.add("label_smoothing", LabelSmoothingLoss)
LOSSES.add("gce", GCELoss)
LOSSES.add("in_trust", InTrustLoss)
LOSSES.add("sce", SCELoss)
LOSSES.add("dece", DeCELoss)
LOSSES.add("dece_auto", DeCEAutoLoss)


def loss_defaults(cls: type[TokenLoss], *, common: bool = True) -> dict[str, Any]:
    """The keyword parameters a registered loss accepts, with their defaults (its own, then its parents'
    and, with ``common``, the ones every loss takes), without those it inherits but refuses
    (``cls.refused_parameters``)."""
    out: dict[str, Any] = {}
    for klass in cls.__mro__[: cls.__mro__.index(TokenLoss) + (1 if common else 0)]:
        if "__init__" in klass.__dict__:
            for name, p in inspect.signature(klass.__init__).parameters.items():
                if name not in ("self", "common", *cls.refused_parameters, *out):
                    out[name] = p.default
    return out


def loss_parameters(cls: type[TokenLoss]) -> list[str]:
    """The names of :func:`loss_defaults`."""
    return list(loss_defaults(cls))


def get_loss(name: str, **kwargs) -> TokenLoss:
    """Builds the loss registered as ``name``; an unknown name or parameter names the valid ones."""
    cls = LOSSES.get(name)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"bad parameter for loss {name!r} ({err}); valid parameters: {', '.join(loss_parameters(cls))}") from None


__all__ = [
    "LOSSES",
    "get_loss",
    "loss_parameters",
    "loss_defaults",
    "TokenLoss",
    "DeCELoss",
    "dece_loss",
    "dece_alpha",
    "DeCEAutoLoss",
    "PlateauTrigger",
    "CELoss",
    "LabelSmoothingLoss",
    "GCELoss",
    "InTrustLoss",
    "SCELoss",
    "FusedLinearLoss",
    "fused_linear_dece",
    "fused_linear_row_loss",
]
