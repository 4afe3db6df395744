"""Input validation shared by every loss: clear errors that name the argument at fault."""

from __future__ import annotations

import numbers

import torch

from dece.errors import ConfigError

REDUCTIONS = ("mean", "sum", "none")


def check_number(name: str, value: object) -> float:
    """``value`` as a float when it is a real number; text and booleans are refused (one type rule for
    every config value: ``"0.9"`` is as wrong for ``alpha_base`` as for ``learning_rate``).

    Raises:
        ConfigError: naming ``name`` and the value.
    """
    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_unit_interval(name: str, value: float, *, low_open: bool, high_open: bool) -> float:
    """Checks ``value`` lies in the interval (0|[0, 1)|1]; returns it as a float."""
    v = check_number(name, value)
    low_ok = v > 0 if low_open else v >= 0
    high_ok = v < 1 if high_open else v <= 1
    if not (low_ok and high_ok) or v != v:
        interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"
        raise ConfigError(f"{name} must lie in {interval}, got {value!r}")
    return v


def check_positive(name: str, value: float) -> float:
    v = check_number(name, value)
    if not v > 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}")
    return v


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ConfigError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    return reduction


def check_targets(y: torch.Tensor, vocab: int, ignore_index: int) -> torch.Tensor:
    """Raises ``ValueError`` naming the first flat position whose id is outside ``[0, vocab)`` and is
    not ``ignore_index``; returns ``y``."""
    bad = (y != ignore_index) & ((y < 0) | (y >= vocab))
    if bool(bad.any()):
        pos = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"target id {int(y[pos])} at flat position {pos} is outside [0, {vocab}) and is not "
            f"ignore_index={ignore_index}"
            + (" (a -100 label with ignore_index set to another value, e.g. the pad id?)" if int(y[pos]) == -100 else "")
        )
    return y


def check_devices(**tensors: torch.Tensor | None) -> None:
    """Raises ``ValueError`` naming the tensor when one is on the ``meta`` device (shapes without values: the
    losses read values, e.g. to check the target ids)."""
    for name, t in tensors.items():
        if t is not None and t.device.type == "meta":
            raise ValueError(f"{name} is on the meta device (a shape without values); the loss reads values: "
                             "give CPU or CUDA tensors (materialise the model first, e.g. with to_empty())")


def flatten_inputs(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, *, check_finite: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validates (..., V) logits against (...) integer targets and returns them as (N, V) and (N,).

    Raises ``ValueError`` for tensors on the meta device, non-float logits, mismatched shapes, and target
    ids outside
    ``[0, V)`` that are not ``ignore_index`` (naming the first offending position and value);
    with ``check_finite`` also for NaN/Inf logits (naming the first offending row).
    """
    check_devices(logits=logits, target=target)
    if not torch.is_floating_point(logits):
        raise ValueError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"target must be an integer tensor of class ids, got dtype {target.dtype}")
    if logits.dim() < 1 or logits.shape[:-1] != target.shape:
        raise ValueError(
            f"shape mismatch: logits {tuple(logits.shape)} must be target shape {tuple(target.shape)} + (V,)"
        )
    vocab = logits.shape[-1]
    if vocab < 2:
        raise ValueError(f"the class dimension must have at least 2 entries, got V={vocab}")
    z = logits.reshape(-1, vocab)
    y = check_targets(target.reshape(-1).long(), vocab, ignore_index)
    if check_finite:
        finite = torch.isfinite(z).all(dim=1)
        if not bool(finite.all()):
            row = int((~finite).nonzero()[0, 0])
            raise ValueError(f"non-finite logits (NaN or Inf) in flat row {row}")
    return z, y
