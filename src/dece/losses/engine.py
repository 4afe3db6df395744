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

A row math may also bring a device kernel (a :class:`RowKernel`, its ``kernel`` attribute): with
``backend="triton"`` the engine runs it on all rows at once, in the logits' dtype, instead of the
chunks above (DeCE's: :mod:`dece.losses.triton_dece`); ``backend="auto"`` does so where the kernel runs
(CUDA logits, triton installed) and runs the chunks elsewhere (:func:`row_kernel`).
"""

from __future__ import annotations

import functools
import importlib.util
from typing import Protocol

import torch

# Chunks hold about this many fp32 elements. CPU: 8 MiB, cache-friendly, and per-chunk overhead is
# negligible. CUDA: 64 MiB, since each chunk costs ~30 kernel launches; the chunk's fp32 temporaries
# stay small next to the logits of a real batch (0.5 GiB at 4096 x 32000).
_CHUNK_ELEMENTS = {"cpu": 1 << 21, "cuda": 1 << 24}


class RowMath(Protocol):
    """Per-chunk math of one loss."""

    def __call__(
        self, z: torch.Tensor, y: torch.Tensor, need_grad: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``z`` (n, V) fp32 logits, ``y`` (n,) labels in [0, V) -> (loss (n,), dL/dz (n, V) or None).

        May overwrite ``z`` in place (the engine passes a private fp32 copy or view it owns)."""
        ...


class RowKernel(Protocol):
    """The same math as one device kernel (``backend="triton"``): reads ``z`` in its own dtype, returns
    fp32 losses and writes ``scale * row_scale[i] * dL/dz`` into ``grad`` (which may be ``z``).
    ``rows`` restricts the work to those row indices; losses and ``row_scale`` follow their order."""

    def __call__(
        self,
        z: torch.Tensor,
        y: torch.Tensor,
        grad: torch.Tensor | None,
        *,
        scale: float,
        row_scale: torch.Tensor | None,
        rows: torch.Tensor | None,
    ) -> torch.Tensor: ...


# The dtypes a device kernel reads (it computes in fp32); float64 stays on the PyTorch math.
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@functools.cache
def triton_installed() -> bool:
    """Whether the ``triton`` package can be imported here (looked up once)."""
    return importlib.util.find_spec("triton") is not None


def row_kernel(math: RowMath, backend: str, z: torch.Tensor) -> RowKernel | None:
    """The kernel that replaces ``math`` under ``backend`` for logits like ``z`` (None: the PyTorch row math
    runs). ``"torch"``: none. ``"triton"``: the math's kernel, or ValueError for a math without one.
    ``"auto"``: the kernel where it runs (a math that has one, CUDA logits of a dtype in
    :data:`KERNEL_DTYPES`, triton installed), else the PyTorch math."""
    if backend == "torch":
        return None
    kernel = getattr(math, "kernel", None)
    if backend == "auto":
        runs = kernel is not None and z.is_cuda and z.dtype in KERNEL_DTYPES and triton_installed()
        return kernel if runs else None
    if kernel is None:
        raise ValueError(
            f"backend={backend!r} has no kernel for {type(math).__name__} (only DeCE has one); use backend='torch'"
        )
    return kernel


def default_chunk_rows(vocab: int, device: torch.device | None = None) -> int:
    elements = _CHUNK_ELEMENTS["cuda" if device is not None and device.type == "cuda" else "cpu"]
    return max(1, elements // vocab)


def softmax_vjp_(p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """dL/dz for p = softmax(z) given g = dL/dp, in place in ``g``: p * (g - <p, g>)."""
    dot = torch.linalg.vecdot(p, g, dim=1)
    return g.sub_(dot.unsqueeze(1)).mul_(p)


class RowChunks:
    """The non-ignored rows of ``y`` (N,), walked in chunks of ``chunk_rows``.

    Iterating yields ``(start, stop, idx)``: ``idx`` is None when no row is ignored (the chunk is rows
    ``start:stop``), else the chunk's row indices. :meth:`take` gathers a chunk of any (N, ...) tensor.
    """

    def __init__(self, y: torch.Tensor, ignore_index: int, chunk_rows: int) -> None:
        valid = y != ignore_index
        self.all_valid = bool(valid.all())
        self.rows = None if self.all_valid else valid.nonzero().squeeze(1)
        self.n_valid = y.numel() if self.all_valid else self.rows.numel()
        self.chunk_rows = int(chunk_rows)

    def __iter__(self):
        for start in range(0, self.n_valid, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.n_valid)
            yield start, stop, (None if self.all_valid else self.rows[start:stop])

    @staticmethod
    def take(x: torch.Tensor, start: int, stop: int, idx: torch.Tensor | None) -> torch.Tensor:
        """Rows of the chunk: a view when ``idx`` is None, else a private copy."""
        return x[start:stop] if idx is None else x.index_select(0, idx)

    @staticmethod
    def put_(out: torch.Tensor, start: int, stop: int, idx: torch.Tensor | None, value: torch.Tensor) -> None:
        if idx is None:
            out[start:stop].copy_(value)
        else:
            out.index_copy_(0, idx, value.to(out.dtype))


def resolve_denominator(y: torch.Tensor, ignore_index: int, reduction: str, denominator: float | None) -> float:
    """Divisor of ``reduction="mean"`` (default: the number of non-ignored rows; at least 1, so a mean
    over zero rows is 0 with a zero gradient rather than NaN); 1 for the other reductions. Raises
    ValueError for a given denominator that is negative, not finite, or 0 while some target is not ignored."""
    if reduction != "mean":
        return 1.0
    if denominator is not None and not 0 <= float(denominator) < float("inf"):
        raise ValueError(f"mean_denominator must be a finite number >= 0 (0: a mean over no rows), got {denominator!r}")
    if denominator is not None and float(denominator) == 0 and bool((y != ignore_index).any()):
        raise ValueError("mean_denominator = 0 with rows to average: give their count (0 is for a batch whose "
                         "targets are all ignored)")
    if denominator is None:
        denominator = float((y != ignore_index).sum())
    return max(float(denominator or 1.0), 1.0)


def reduce_rows(row_loss: torch.Tensor, reduction: str, denominator: float) -> torch.Tensor:
    """The forward's output from the per-row losses: themselves (``"none"``), their sum, or the sum
    over ``denominator`` (``"mean"``, see :func:`resolve_denominator`)."""
    if reduction == "none":
        return row_loss
    total = row_loss.sum()
    return total / denominator if reduction == "mean" else total


def take_saved_grads(ctx) -> tuple:
    """The gradients a Function stored in forward (``ctx.saved_grads``); with ``ctx.inplace`` they are
    released from ``ctx`` (so autograd may take the buffers over) and a second backward raises."""
    grads = ctx.saved_grads
    if grads is None:
        raise RuntimeError(
            "this loss stores its gradient in forward and it was already used by a previous backward; "
            "recompute the loss instead of calling backward twice (retain_graph is not supported)"
        )
    if ctx.inplace:
        ctx.saved_grads = None
    return grads


def scale_saved_grads(grads: tuple, grad_out: torch.Tensor, *, per_row: bool, inplace: bool) -> tuple:
    """Multiplies stored gradients by the incoming gradient: a scalar (skipped when exactly 1) or, with
    ``per_row``, one value per row of each gradient. In place when ``inplace``, else on copies."""
    skip = not per_row and bool(grad_out == 1)
    out = []
    for g in grads:
        if g is None:
            out.append(None)
            continue
        scale = None if skip else grad_out.to(g.dtype)
        if scale is not None and per_row:
            scale = scale.unsqueeze(1)
        if inplace:
            out.append(g if scale is None else g.mul_(scale))
        else:
            out.append(g.clone() if scale is None else g * scale)
    return tuple(out)


class _ChunkedRowLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z, y, math, ignore_index, reduction, denominator, chunk_rows, inplace, kernel):  # type: ignore[override]
        n, vocab = z.shape
        need_grad = ctx.needs_input_grad[0]
        chunks = RowChunks(y, ignore_index, chunk_rows or default_chunk_rows(vocab, z.device))
        compute_dtype = torch.promote_types(z.dtype, torch.float32)  # fp32 math for bf16/fp16, fp64 stays fp64
        row_loss = torch.zeros(n, dtype=compute_dtype, device=z.device)
        grad = None
        if need_grad:  # contiguous whatever z's strides, as the kernel wants
            grad = (torch.empty if chunks.all_valid else torch.zeros)(z.shape, dtype=z.dtype, device=z.device)
        scale = 1.0 / denominator if reduction == "mean" else 1.0
        ctx.reduction = reduction
        ctx.inplace = inplace
        ctx.saved_grads = (grad,)
        if kernel is not None:  # every row in one launch; no fp32 copy of the logits
            loss = kernel(z.contiguous(), y, grad, scale=scale, row_scale=None, rows=chunks.rows)
            RowChunks.put_(row_loss, 0, n, chunks.rows, loss)
            return reduce_rows(row_loss, reduction, denominator)
        for start, stop, idx in chunks:
            if idx is None:
                zc = z[start:stop].to(compute_dtype, copy=True)
            else:
                zc = z.index_select(0, idx).to(compute_dtype)  # index_select already made a private copy
            loss_c, grad_c = math(zc, RowChunks.take(y, start, stop, idx), need_grad)
            RowChunks.put_(row_loss, start, stop, idx, loss_c)
            if need_grad:
                if scale != 1.0:
                    grad_c.mul_(scale)
                RowChunks.put_(grad, start, stop, idx, grad_c)
        return reduce_rows(row_loss, reduction, denominator)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        (grad,) = scale_saved_grads(
            take_saved_grads(ctx), grad_out, per_row=ctx.reduction == "none", inplace=ctx.inplace
        )
        return grad, None, None, None, None, None, None, None, None


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
    backend: str = "auto",
) -> torch.Tensor:
    """Applies ``math`` to validated (N, V) logits and (N,) labels; see the module docstring.

    ``denominator`` is the divisor of ``reduction="mean"`` (default: the number of non-ignored rows;
    a mean over zero rows is 0, with a zero gradient, rather than NaN). ``backend="triton"`` runs the
    math's kernel over all rows at once instead of the chunked PyTorch math; ``"auto"`` does so where it
    runs (:func:`row_kernel`).
    """
    denominator = resolve_denominator(y, ignore_index, reduction, denominator)
    kernel = row_kernel(math, backend, z)
    return _ChunkedRowLoss.apply(
        z, y, math, ignore_index, reduction, denominator, chunk_rows, inplace_backward, kernel
    )
