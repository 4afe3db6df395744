"""One chunking engine for every token-level loss of the family.

A loss only states its per-chunk math (a :class:`RowMath`): given fp32 logits ``z`` of a chunk of
rows and their labels ``y``, return the per-row loss and, when asked, ``dL_row/dz``. The engine

* drops ignored rows (``target == ignore_index``) before any math,
* walks the remaining rows in chunks, upcasting each chunk to fp32,
* computes the gradient inside forward and stores it in one buffer of the logits' shape and dtype,
  already scaled by the reduction's ``1/denominator``, so no dense (N x V) target is ever built and the
  peak extra memory is about the size of the logits gradient (plus one fp32 chunk),
* in backward multiplies that buffer by the incoming gradient in place (skipped when it is exactly 1).

With ``inplace_backward=True`` (the default) the saved gradient is consumed by the first backward:
a second backward through the same graph (``retain_graph``, ``gradcheck``) raises instead of
returning a wrong gradient. ``inplace_backward=False`` keeps it intact at the cost of one more
gradient-sized tensor in backward.
"""

from __future__ import annotations

from typing import Protocol

import torch

# Chunks hold about this many fp32 elements (8 MiB): small enough to stay in cache-friendly sizes,
# large enough that per-chunk overhead is negligible.
_CHUNK_ELEMENTS = 1 << 21


class RowMath(Protocol):
    """Per-chunk math of one loss."""

    def __call__(
        self, z: torch.Tensor, y: torch.Tensor, need_grad: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``z`` (n, V) fp32 logits, ``y`` (n,) labels in [0, V) -> (loss (n,), dL/dz (n, V) or None).

        May overwrite ``z`` in place (the engine passes a private fp32 copy or view it owns)."""
        ...


def default_chunk_rows(vocab: int) -> int:
    return max(1, _CHUNK_ELEMENTS // vocab)


def softmax_vjp_(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/dz for p = softmax(z) given g = dL/dp, in place in ``g``: p * (g - <p, g>)."""
    dot = torch.linalg.vecdot(p, g, dim=1)
    return g.sub_(dot.unsqueeze(1)).mul_(p)


class _ChunkedRowLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, y, math, ignore_index, reduction, denominator, chunk_rows, inplace):  # type: ignore[override]
        n, vocab = z.shape
        need_grad = ctx.needs_input_grad[0]
        valid = y != ignore_index
        all_valid = bool(valid.all())
        rows = None if all_valid else valid.nonzero().squeeze(1)
        n_valid = n if all_valid else rows.numel()
        compute_dtype = torch.promote_types(z.dtype, torch.float32)  # fp32 math for bf16/fp16, fp64 stays fp64
        row_loss = torch.zeros(n, dtype=compute_dtype, device=z.device)
        grad = (torch.empty_like(z) if all_valid else torch.zeros_like(z)) if need_grad else None
        scale = 1.0 / denominator if reduction == "mean" else 1.0
        chunk_rows = chunk_rows or default_chunk_rows(vocab)
        for start in range(0, n_valid, chunk_rows):
            stop = min(start + chunk_rows, n_valid)
            if all_valid:
                idx = None
                zc = z[start:stop].to(compute_dtype, copy=True)
                yc = y[start:stop]
            else:
                idx = rows[start:stop]
                zc = z.index_select(0, idx).to(compute_dtype)  # index_select already made a private copy
                yc = y.index_select(0, idx)
            loss_c, grad_c = math(zc, yc, need_grad)
            if idx is None:
                row_loss[start:stop] = loss_c
            else:
                row_loss.index_copy_(0, idx, loss_c)
            if need_grad:
                if scale != 1.0:
                    grad_c.mul_(scale)
                if idx is None:
                    grad[start:stop].copy_(grad_c)
                else:
                    grad.index_copy_(0, idx, grad_c.to(grad.dtype))
        ctx.reduction = reduction
        ctx.inplace = inplace
        ctx.grad = grad
        if reduction == "none":
            return row_loss
        total = row_loss.sum()
        return total / denominator if reduction == "mean" else total

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        grad = ctx.grad
        if grad is None:
            raise RuntimeError(
                "this loss stores its gradient in forward and it was already used by a previous backward; "
                "recompute the loss instead of calling backward twice (retain_graph is not supported)"
            )
        scale = grad_out.to(grad.dtype)
        if ctx.reduction == "none":
            scale = scale.unsqueeze(1)
        elif bool(grad_out == 1):
            scale = None
        if ctx.inplace:
            ctx.grad = None  # released before returning, so autograd may take the buffer over
            if scale is not None:
                grad.mul_(scale)
        else:
            grad = grad.clone() if scale is None else grad * scale
        return grad, None, None, None, None, None, None, None


def chunked_row_loss(
    z: torch.Tensor,
    y: torch.Tensor,
    math: RowMath,
    *,
    ignore_index: int,
    reduction: str,
    denominator: float | None = None,
    chunk_rows: int | None = None,
    inplace_backward: bool = True,
) -> torch.Tensor:
    """Applies ``math`` to validated (N, V) logits and (N,) labels; see the module docstring.

    ``denominator`` is the divisor of ``reduction="mean"`` (default: the number of non-ignored rows;
    a mean over zero rows is 0, with a zero gradient, rather than NaN).
    """
    if reduction == "mean" and denominator is None:
        denominator = float((y != ignore_index).sum())
    denominator = max(float(denominator or 1.0), 1.0) if reduction == "mean" else 1.0
    return _ChunkedRowLoss.apply(z, y, math, ignore_index, reduction, denominator, chunk_rows, inplace_backward)
