"""Plain dense references of every loss, written straight from the formulas (autograd does the
gradients). Deliberately naive: full (N x V) targets, no chunking, no closed forms."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _masked(logits, target, ignore_index):
    z = logits.reshape(-1, logits.shape[-1])
    y = target.reshape(-1)
    keep = y != ignore_index
    return z, y, keep


def _reduce(rows, keep, reduction, denominator=None):
    full = torch.zeros(keep.shape, dtype=rows.dtype, device=rows.device)
    full = full.masked_scatter(keep, rows)
    if reduction == "none":
        return full
    if reduction == "sum":
        return full.sum()
    denom = keep.sum() if denominator is None else denominator
    return full.sum() / max(float(denom), 1.0)


def dece_dense(logits, target, alpha, eps, ignore_index=-100, reduction="mean", denominator=None):
    z, y, keep = _masked(logits.double() if logits.dtype == torch.float64 else logits.float(), target, ignore_index)
    z, y = z[keep], y[keep]
    V = z.shape[1]
    t = torch.full_like(z, eps / (V - 1))
    t.scatter_(1, y[:, None], 1 - eps)
    p = torch.clamp(torch.softmax(z, dim=1), min=1e-7, max=1.0)
    q = alpha * p + (1 - alpha) * t
    rows = -(t * torch.log(q)).sum(dim=1)
    return _reduce(rows, keep, reduction, denominator)


def ce_dense(logits, target, ignore_index=-100, reduction="mean"):
    z, y, keep = _masked(logits, target, ignore_index)
    logp = torch.log(torch.softmax(z[keep], dim=1))
    rows = -logp.gather(1, y[keep][:, None]).squeeze(1)
    return _reduce(rows, keep, reduction)


def label_smoothing_dense(logits, target, eps, ignore_index=-100, reduction="mean"):
    z, y, keep = _masked(logits, target, ignore_index)
    z, y = z[keep], y[keep]
    V = z.shape[1]
    t = (1 - eps) * F.one_hot(y, V).to(z.dtype) + eps / V
    rows = -(t * torch.log(torch.softmax(z, dim=1))).sum(dim=1)
    return _reduce(rows, keep, reduction)


def gce_dense(logits, target, q, ignore_index=-100, reduction="mean"):
    z, y, keep = _masked(logits, target, ignore_index)
    z, y = z[keep], y[keep]
    p = torch.clamp(torch.softmax(z, dim=1), min=1e-7, max=1.0)
    p_y = (F.one_hot(y, z.shape[1]).to(z.dtype) * p).sum(dim=1)
    rows = (1 - p_y**q) / q
    return _reduce(rows, keep, reduction)


def in_trust_dense(logits, target, delta, ce_weight, dce_weight, ignore_index=-100, reduction="mean"):
    z, y, keep = _masked(logits, target, ignore_index)
    z, y = z[keep], y[keep]
    ce = -torch.log(torch.softmax(z, dim=1)).gather(1, y[:, None]).squeeze(1)
    p = torch.clamp(torch.softmax(z, dim=1), min=1e-7, max=1.0)
    onehot = torch.clamp(F.one_hot(y, z.shape[1]).to(z.dtype), min=1e-4, max=1.0)
    dce = -(p * torch.log(delta * p + (1 - delta) * onehot)).sum(dim=1)
    return _reduce(ce_weight * ce + dce_weight * dce, keep, reduction)


def sce_dense(logits, target, ce_weight, rce_weight, ignore_index=-100, reduction="mean"):
    z, y, keep = _masked(logits, target, ignore_index)
    z, y = z[keep], y[keep]
    ce = -torch.log(torch.softmax(z, dim=1)).gather(1, y[:, None]).squeeze(1)
    p = torch.clamp(torch.softmax(z, dim=1), min=1e-7, max=1.0)
    onehot = torch.clamp(F.one_hot(y, z.shape[1]).to(z.dtype), min=1e-4, max=1.0)
    rce = -(p * torch.log(onehot)).sum(dim=1)
    return _reduce(ce_weight * ce + rce_weight * rce, keep, reduction)


def dece_grad_bound(alpha: float) -> float:
    """Per-row L1 bound of dL/dz: |g_j| = alpha y'_j / q_j <= alpha / (1 - alpha) because
    q_j >= (1 - alpha) y'_j, and sum_k |p_k (g_k - <p, g>)| <= 2 max_j |g_j|."""
    return 2 * alpha / (1 - alpha)


def dece_loss_bound(alpha: float, eps: float, vocab: int) -> float:
    """L = -sum_j y'_j log q_j <= -sum_j y'_j log((1 - alpha) y'_j) = -log(1 - alpha) + H(y')."""
    c = eps / (vocab - 1)
    entropy = -(1 - eps) * math.log(1 - eps) - (eps * math.log(c) if c > 0 else 0.0)
    return -math.log(1 - alpha) + entropy
