r"""Baseline losses the paper compares DeCE with, on the same engine and with the same masking and
reduction semantics as :class:`~dece.losses.DeCELoss`.

Per row, with :math:`p = \mathrm{softmax}(z)` and label :math:`y`:

* ``ce``: :math:`-\log p_y`.
* ``label_smoothing`` (PyTorch's convention, equal to ``F.cross_entropy(label_smoothing=eps)``):
  :math:`-\sum_j t_j \log p_j`, :math:`t = (1-\epsilon)\,\mathrm{onehot}(y) + \epsilon/V`.
* ``gce`` (Zhang & Sabuncu 2018): :math:`(1 - \bar p_y^{\,q})/q`, :math:`\bar p = \mathrm{clamp}(p, 10^{-7}, 1)`.
* ``in_trust`` (Huang et al. 2021): :math:`w_{ce}\,\mathrm{CE} + w_{dce}\,\mathrm{DCE}`,
  :math:`\mathrm{DCE} = -\sum_j \bar p_j \log(\delta \bar p_j + (1-\delta)\hat y_j)`,
  :math:`\hat y = \mathrm{clamp}(\mathrm{onehot}(y), 10^{-4}, 1)`; the DeCE authors use
  :math:`0.2\,\mathrm{CE} + 0.8\,\mathrm{DCE}`, :math:`\delta = 0.5`.
* ``sce`` (Wang et al. 2019): :math:`a\,\mathrm{CE} + b\,\mathrm{RCE}`,
  :math:`\mathrm{RCE} = -\sum_j \bar p_j \log \hat y_j = -\log(10^{-4}) \sum_{j\ne y} \bar p_j`.

Gradients are closed forms; clamps have autograd's semantics (zero gradient where ``p < 1e-7``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dece.losses._checks import check_positive, check_unit_interval
from dece.losses.base import TokenLoss
from dece.losses.dece import P_MIN
from dece.losses.engine import softmax_vjp_

ONEHOT_MIN = 1e-4  # the clamp of the one-hot target in in-trust and SCE


def _log_softmax_(z: torch.Tensor) -> torch.Tensor:
    """Row log-softmax of a private fp32 chunk, in place."""
    z.sub_(z.amax(dim=1, keepdim=True))
    return z.sub_(z.exp().sum(dim=1, keepdim=True).log_())


def _sub_onehot_(g: torch.Tensor, col: torch.Tensor, weight: float) -> torch.Tensor:
    """g - weight * onehot(y), in place."""
    return g.scatter_add_(1, col, torch.full(col.shape, -weight, dtype=g.dtype, device=g.device))


@dataclass(frozen=True)
class CERowMath:
    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        col = y.unsqueeze(1)
        logp = _log_softmax_(z)
        loss = -logp.gather(1, col).squeeze(1)
        return loss, (_sub_onehot_(logp.exp_(), col, 1.0) if need_grad else None)


@dataclass(frozen=True)
class LabelSmoothingRowMath:
    eps: float
    vocab: int

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        col = y.unsqueeze(1)
        logp = _log_softmax_(z)
        u = self.eps / self.vocab
        loss = -((1.0 - self.eps) * logp.gather(1, col).squeeze(1) + u * logp.sum(dim=1))
        if not need_grad:
            return loss, None
        return loss, _sub_onehot_(logp.exp_().sub_(u), col, 1.0 - self.eps)


@dataclass(frozen=True)
class GCERowMath:
    q: float

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        col = y.unsqueeze(1)
        p = _log_softmax_(z).exp_()
        p_y = p.gather(1, col).squeeze(1)
        pq = p_y.clamp(min=P_MIN).pow(self.q)
        loss = (1.0 - pq) / self.q
        if not need_grad:
            return loss, None
        # dL/dp_y = -p_y^(q-1) (0 inside the clamp); dL/dz = dL/dp_y * p_y * (onehot - p)
        coef = torch.where(p_y >= P_MIN, pq, torch.zeros_like(pq))
        return loss, p.mul_(coef.unsqueeze(1)).scatter_add_(1, col, -coef.unsqueeze(1))


@dataclass(frozen=True)
class InTrustRowMath:
    delta: float
    ce_weight: float
    dce_weight: float

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        col = y.unsqueeze(1)
        logp = _log_softmax_(z)
        ce = -logp.gather(1, col).squeeze(1)
        p = logp.exp_()
        pc = p.clamp(min=P_MIN)
        u = pc * self.delta + (1.0 - self.delta) * ONEHOT_MIN
        u.scatter_(1, col, pc.gather(1, col) * self.delta + (1.0 - self.delta))
        log_u = u.log()
        loss = self.ce_weight * ce - self.dce_weight * (pc * log_u).sum(dim=1)
        if not need_grad:
            return loss, None
        # dDCE/dp_j = -(log u_j + delta p_j / u_j), zero inside the clamp
        g = pc.mul_(self.delta).div_(u).add_(log_u).mul_(-self.dce_weight)
        g.masked_fill_(p < P_MIN, 0.0)
        dz = softmax_vjp_(p, g)
        return loss, _sub_onehot_(dz.add_(p, alpha=self.ce_weight), col, self.ce_weight)


@dataclass(frozen=True)
class SCERowMath:
    ce_weight: float
    rce_weight: float

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        col = y.unsqueeze(1)
        logp = _log_softmax_(z)
        ce = -logp.gather(1, col).squeeze(1)
        p = logp.exp_()
        a = -math.log(ONEHOT_MIN)
        pc = p.clamp(min=P_MIN)
        rce = a * (pc.sum(dim=1) - pc.gather(1, col).squeeze(1))
        loss = self.ce_weight * ce + self.rce_weight * rce
        if not need_grad:
            return loss, None
        g = (p >= P_MIN).to(p.dtype).mul_(self.rce_weight * a)
        g.scatter_(1, col, 0.0)
        dz = softmax_vjp_(p, g)
        return loss, _sub_onehot_(dz.add_(p, alpha=self.ce_weight), col, self.ce_weight)


class CELoss(TokenLoss):
    """Plain cross-entropy (the undefended baseline)."""

    summary = "cross-entropy: the undefended baseline"
    plain_ce = True

    def row_math(self, vocab: int, epoch: float | None) -> CERowMath:
        return CERowMath()


class LabelSmoothingLoss(TokenLoss):
    """Cross-entropy with label smoothing, PyTorch's convention (``eps/V`` on every class)."""

    summary = "cross-entropy with PyTorch's label smoothing"

    def __init__(self, *, label_smoothing: float = 0.05, **common) -> None:
        super().__init__(**common)
        self.label_smoothing = check_unit_interval("label_smoothing", label_smoothing, low_open=False, high_open=True)

    def row_math(self, vocab: int, epoch: float | None) -> LabelSmoothingRowMath:
        return LabelSmoothingRowMath(eps=self.label_smoothing, vocab=vocab)


class GCELoss(TokenLoss):
    """Generalised cross-entropy, ``(1 - p_y^q)/q`` with ``q`` in (0, 1]."""

    summary = "generalised cross-entropy (1 - p_y^q)/q (Zhang & Sabuncu 2018)"

    def __init__(self, *, q: float = 0.7, **common) -> None:
        super().__init__(**common)
        self.q = check_unit_interval("q", q, low_open=True, high_open=False)

    def row_math(self, vocab: int, epoch: float | None) -> GCERowMath:
        return GCERowMath(q=self.q)


class InTrustLoss(TokenLoss):
    """In-trust loss, ``ce_weight * CE + dce_weight * DCE(delta)``."""

    summary = "in-trust loss, ce_weight * CE + dce_weight * DCE(delta) (Huang et al. 2021)"

    def __init__(self, *, delta: float = 0.5, ce_weight: float = 0.2, dce_weight: float = 0.8, **common) -> None:
        super().__init__(**common)
        self.delta = check_unit_interval("delta", delta, low_open=True, high_open=True)
        self.ce_weight = check_positive("ce_weight", ce_weight) if ce_weight else 0.0
        self.dce_weight = check_positive("dce_weight", dce_weight)

    def row_math(self, vocab: int, epoch: float | None) -> InTrustRowMath:
        return InTrustRowMath(delta=self.delta, ce_weight=self.ce_weight, dce_weight=self.dce_weight)


class SCELoss(TokenLoss):
    """Symmetric cross-entropy, ``ce_weight * CE + rce_weight * RCE``."""

    summary = "symmetric cross-entropy, ce_weight * CE + rce_weight * RCE (Wang et al. 2019)"

    def __init__(self, *, ce_weight: float = 0.1, rce_weight: float = 1.0, **common) -> None:
        super().__init__(**common)
        self.ce_weight = check_positive("ce_weight", ce_weight) if ce_weight else 0.0
        self.rce_weight = check_positive("rce_weight", rce_weight)

    def row_math(self, vocab: int, epoch: float | None) -> SCERowMath:
        return SCERowMath(ce_weight=self.ce_weight, rce_weight=self.rce_weight)
