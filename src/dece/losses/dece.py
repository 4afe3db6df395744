r"""The Deceptive Cross-Entropy loss (DeCE; Yang et al., TOSEM 2026).

For one target token with label :math:`y` over a vocabulary of :math:`V` entries (paper, Sec. 3):

.. math::

    y'_j &= 1-\epsilon \text{ if } j = y \text{ else } \epsilon/(V-1)          \quad\text{(label smoothing)}\\
    p    &= \operatorname{clamp}(\operatorname{softmax}(z), 10^{-7}, 1)\\
    \alpha &= \alpha_{base}^{\,e} \quad (e = \text{epoch, counted from 1})\\
    q    &= \alpha\, p + (1-\alpha)\, y'                                         \quad\text{(the deceptive distribution)}\\
    L    &= -\textstyle\sum_j y'_j \log q_j

and the batch loss averages :math:`L` over the non-ignored target tokens. Because
:math:`q_j \ge (1-\alpha) y'_j`, the loss is bounded, and so is its gradient: a token the model
cannot fit yet (a backdoor payload, learnt late) stops pulling the model once :math:`\alpha` decays.

Closed form used here (per row; :math:`c=\epsilon/(V-1)`, :math:`h=1-\epsilon`):
:math:`L = -(c\sum_{j\ne y} \log q_j + h\log q_y)`, :math:`g_j = \partial L/\partial p_j = -\alpha y'_j/q_j`
where the clamp is inactive (:math:`p_j \ge 10^{-7}`; 0 elsewhere, exactly as autograd through
``torch.clamp``), then :math:`\partial L/\partial z = p \odot (g - \langle p, g\rangle)`.
No (tokens x V) target tensor is built; see :mod:`dece.losses.engine` for memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dece.errors import ConfigError
from dece.losses._checks import check_unit_interval
from dece.losses.base import TokenLoss
from dece.losses.engine import softmax_vjp_

P_MIN = 1e-7
DEFAULT_ALPHA_BASE = 0.985  # the authors' released default
DEFAULT_LABEL_SMOOTHING = 0.05


def dece_alpha(alpha_base: float, epoch: float) -> float:
    """DeCE's mixing weight (paper, Sec. 3): ``alpha = alpha_base ** epoch``.

    Args:
        alpha_base: the decay base, in (0, 1] (the authors use 0.985).
        epoch: the training epoch counted from 1; a float gives a per-step schedule.

    Returns:
        alpha in (0, 1].

    Raises:
        ConfigError: ``alpha_base`` outside (0, 1].
        ValueError: ``epoch`` < 1 or not finite.
    """
    check_unit_interval("alpha_base", alpha_base, low_open=True, high_open=False)
    if not 1 <= float(epoch) < float("inf"):
        raise ValueError(f"epoch is a finite number counted from 1, got {epoch!r}")
    return float(alpha_base) ** float(epoch)


def softmax_(z: torch.Tensor) -> torch.Tensor:
    """Row softmax of a private fp32 chunk, in place."""
    z.sub_(z.amax(dim=1, keepdim=True)).exp_()
    return z.div_(z.sum(dim=1, keepdim=True))


@dataclass(frozen=True)
class DeCERowMath:
    """Per-chunk DeCE math for the engine (equations in the module docstring)."""

    alpha: float
    label_smoothing: float
    vocab: int

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        a, eps = self.alpha, self.label_smoothing
        c = eps / (self.vocab - 1)
        h = 1.0 - eps
        col = y.unsqueeze(1)
        p = softmax_(z)
        p_y = p.gather(1, col).squeeze(1)
        # q for every column as if off-label; the label column is handled on its own.
        q = p.clamp(min=P_MIN).mul_(a).add_((1.0 - a) * c)
        q_y = p_y.clamp(min=P_MIN).mul(a).add_((1.0 - a) * h)
        q_y_as_off = q.gather(1, col).squeeze(1)
        loss = -(c * (q.log().sum(dim=1) - q_y_as_off.log()) + h * q_y.log())
        if not need_grad:
            return loss, None
        g = q.reciprocal_().mul_(-a * c)
        g.scatter_(1, col, (-a * h / q_y).unsqueeze(1))
        g.masked_fill_(p < P_MIN, 0.0)  # the clamp's zero-gradient region
        return loss, softmax_vjp_(p, g)

    def kernel(self, z, y, grad, *, scale, row_scale, rows):
        """The same math as one Triton kernel (:mod:`dece.losses.triton_dece`, ``backend="triton"``)."""
        from dece.losses.triton_dece import dece_rows  # needs triton: imported only when asked for

        return dece_rows(z, y, grad, alpha=self.alpha, label_smoothing=self.label_smoothing,
                         scale=scale, row_scale=row_scale, rows=rows)


class DeCELoss(TokenLoss):
    """The DeCE loss as an ``nn.Module``. Three lines in any training loop::

        loss_fn = DeCELoss(alpha_base=0.985, label_smoothing=0.05)
        loss = loss_fn(logits, labels, epoch=epoch)   # epoch counted from 1
        loss.backward()

    ``alpha`` given here presets a fixed alpha, and ``forward`` then takes no epoch.
    ``authors_compat=True`` reproduces the authors' released code: the mean divides by *all*
    positions, ignored ones included (their ``.sum(dim=1).mean()``); they pass the tokenizer's pad
    id as ``ignore_index``. bf16/fp16 logits are computed in fp32; the gradient comes back in the
    logits' dtype and the loss is fp32.
    """

    summary = "DeCE (Yang et al., TOSEM 2026): CE against alpha * p + (1 - alpha) * y', alpha = alpha_base ** epoch"
    epoch_aware = True
    deceptive = True
    backends = ("auto", "torch", "triton")

    def __init__(
        self,
        *,
        alpha_base: float = DEFAULT_ALPHA_BASE,
        alpha: float | None = None,
        label_smoothing: float = DEFAULT_LABEL_SMOOTHING,
        authors_compat: bool = False,
        **common,
    ) -> None:
        super().__init__(**common)
        if alpha is not None and alpha_base != DEFAULT_ALPHA_BASE:  # one of them would be ignored
            raise ConfigError(f"give alpha_base (alpha = alpha_base ** epoch) or a fixed alpha, not both "
                              f"(alpha_base={alpha_base!r}, alpha={alpha!r})")
        self.alpha_base = check_unit_interval("alpha_base", alpha_base, low_open=True, high_open=False)
        self.alpha = None if alpha is None else check_unit_interval("alpha", alpha, low_open=True, high_open=False)
        self.label_smoothing = check_unit_interval("label_smoothing", label_smoothing, low_open=False, high_open=True)
        self.authors_compat = bool(authors_compat)

    def alpha_at(self, epoch: float | None) -> float:
        if self.alpha is not None:
            if epoch is not None:
                raise ValueError("this DeCELoss has a preset alpha; do not pass an epoch")
            return self.alpha
        if epoch is None:
            raise ValueError("DeCELoss needs the epoch (counted from 1) or a preset alpha")
        return dece_alpha(self.alpha_base, epoch)

    def row_math(self, vocab: int, epoch: float | None) -> DeCERowMath:
        return DeCERowMath(alpha=self.alpha_at(epoch), label_smoothing=self.label_smoothing, vocab=vocab)

    def default_denominator(self, target: torch.Tensor) -> float | None:
        return float(target.numel()) if self.authors_compat else None

    def extra_repr(self) -> str:
        a = f"alpha={self.alpha}" if self.alpha is not None else f"alpha_base={self.alpha_base}"
        return f"{a}, label_smoothing={self.label_smoothing}, {super().extra_repr()}"


def dece_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    epoch: float | None = None,
    alpha: float | None = None,
    alpha_base: float = DEFAULT_ALPHA_BASE,
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING,
    ignore_index: int = -100,
    reduction: str = "mean",
    authors_compat: bool = False,
    mean_denominator: float | None = None,
    check_finite: bool = False,
    chunk_size: int | None = None,
    inplace_backward: bool = True,
    backend: str = "auto",
) -> torch.Tensor:
    """Functional DeCE (Yang et al., TOSEM; paper Sec. 3): with ``y'`` the label-smoothed one-hot target
    (``1 - eps`` on the label, ``eps / (V - 1)`` elsewhere) and ``p = softmax(logits)`` clamped to
    [1e-7, 1], ``q = alpha * p + (1 - alpha) * y'`` and the loss is ``-sum_j y'_j log q_j`` per token.
    Computed in closed form, rows in chunks, without a (tokens x V) target tensor.

    Args:
        logits: float tensor (..., V); bf16/fp16 are computed in fp32.
        target: integer tensor (...), class ids in [0, V) or ``ignore_index``.
        epoch: the epoch (from 1) for ``alpha = alpha_base ** epoch``; give this or ``alpha``.
        alpha: a fixed alpha in (0, 1] instead of the schedule.
        alpha_base: the schedule's base (default 0.985, the authors').
        label_smoothing: ``eps`` in [0, 1) (default 0.05, the authors').
        ignore_index: target value of positions left out (default -100).
        reduction: ``"mean"`` over non-ignored tokens, ``"sum"``, or ``"none"``.
        authors_compat: divide the mean by all positions, ignored ones included, as the authors' code.
        mean_denominator: a divisor for ``"mean"`` instead (the Trainer integration passes its token count).
        check_finite: raise on NaN/Inf logits, naming the row.
        chunk_size: rows per chunk (default: sized to the vocabulary).
        inplace_backward: reuse the saved gradient buffer in backward (set False for ``retain_graph``).
        backend: ``"torch"``, ``"triton"`` (CUDA tensors; one fused kernel) or ``"auto"`` (the kernel on
            CUDA fp32/bf16/fp16 logits when triton is installed, else the PyTorch math).

    Returns:
        A scalar (float32; float64 for float64 logits), or per-token losses of ``target``'s shape (0 at
        ignored positions) for ``reduction="none"``.

    Raises:
        ValueError: both or neither of ``epoch`` and ``alpha``, shapes that do not match, a target id
            outside [0, V), integer logits, or non-finite logits with ``check_finite``.
        ConfigError: a parameter outside its range (``alpha_base``, ``alpha``, ``label_smoothing``).
    """
    if (epoch is None) == (alpha is None):
        raise ValueError("give exactly one of epoch (alpha = alpha_base ** epoch) or alpha")
    loss = DeCELoss(
        alpha_base=alpha_base,
        alpha=alpha,
        label_smoothing=label_smoothing,
        authors_compat=authors_compat,
        ignore_index=ignore_index,
        reduction=reduction,
        check_finite=check_finite,
        chunk_size=chunk_size,
        inplace_backward=inplace_backward,
        backend=backend,
    )
    return loss(logits, target, epoch, mean_denominator=mean_denominator)
