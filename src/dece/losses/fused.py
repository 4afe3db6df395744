r"""The output head fused with the loss: any loss of the family on ``hidden @ weight.T + bias`` without
ever holding the (tokens x V) logits.

For V = 32k-150k and long sequences the logits (and their gradient, and their fp32 copy) dominate
training memory. Here the rows of ``hidden`` are walked in chunks; for each chunk of rows ``c``

.. math::

    z_c = h_c W^\top (+ b), \qquad (\ell_c, \partial \ell / \partial z_c) = \text{row\_math}(z_c, y_c), \\
    \nabla_h[c] = \tfrac{\partial \ell}{\partial z_c} W, \qquad
    \nabla_W \mathrel{+}= \tfrac{\partial \ell}{\partial z_c}^{\!\top} h_c, \qquad
    \nabla_b \mathrel{+}= \textstyle\sum_{rows} \tfrac{\partial \ell}{\partial z_c},

all inside forward, so only one chunk of logits ever exists. The per-chunk math is the same
:class:`~dece.losses.engine.RowMath` the unfused engine uses, so every loss of the family (DeCE, CE,
GCE, in-trust, SCE, ...) is available fused: ``FusedLinearLoss(get_loss("gce"))``.

Numerics follow the unfused path ``loss_fn(hidden @ weight.T + bias, target)`` step by step: the
chunk's logits are computed in the inputs' dtype (a bf16 matmul for bf16 inputs), upcast to fp32 for
the math, and the logits gradient is cast back to the inputs' dtype before the two gradient matmuls;
the weight and bias gradients are accumulated over chunks in fp32 for half inputs.

Memory: the gradients of ``hidden`` (N x H) and ``weight`` (V x H, plus an fp32 accumulator for half
inputs) and a few chunk-sized fp32 buffers; nothing of size N x V.

Backward semantics are those of :mod:`dece.losses.engine`: the stored gradients are scaled by the
incoming gradient in place (``inplace_backward=True``, a second backward raises) or on copies. With
``reduction="none"`` the incoming gradient differs per row, so the weight gradient cannot be formed in
forward: forward then computes only the losses and backward recomputes each chunk's logits (one more
matmul; ``retain_graph`` works).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dece.losses._checks import check_devices, check_targets
from dece.losses.base import TokenLoss
from dece.losses.dece import DEFAULT_ALPHA_BASE, DEFAULT_LABEL_SMOOTHING, DeCELoss
from dece.losses.engine import (
    RowChunks,
    RowKernel,
    RowMath,
    reduce_rows,
    resolve_denominator,
    row_kernel,
    scale_saved_grads,
    take_saved_grads,
)

# A fused chunk holds about this many logits and at least _MIN_CHUNK_ROWS rows, since every chunk streams
# the whole weight through three matmuls; but at most ~1/16 of the rows, so that the chunk stays small next
# to the logits it replaces. CPU: 8M (32 MiB in fp32; the math keeps ~3 such buffers alive). CUDA: 128M, so
# that the three matmuls of a chunk are wide enough to run at the GPU's matmul rate rather than at the
# speed of reading W (at Llama 3's V = 128256 that is ~1k rows, as Liger's rule N / ceil(V / H) gives at
# 32k tokens); at most 1/16 of 32k tokens of logits either way.
_FUSED_CHUNK_ELEMENTS = {"cpu": 1 << 23, "cuda": 1 << 27}
_MIN_CHUNK_ROWS = 128


def default_fused_chunk_rows(vocab: int, n_rows: int, device: torch.device | None = None) -> int:
    """Rows per chunk of the fused losses when the loss sets none (see the constants above)."""
    elements = _FUSED_CHUNK_ELEMENTS["cuda" if device is not None and device.type == "cuda" else "cpu"]
    return min(max(_MIN_CHUNK_ROWS, elements // vocab), max(32, -(-n_rows // 16)))


@dataclass(frozen=True)
class SoftcapRowMath:
    """Wraps a row math to act on ``cap * tanh(z / cap)`` (final logit softcapping, as in Gemma 2/3):
    ``dL/dz = dL/dz' * (1 - tanh^2(z / cap))``."""

    inner: RowMath
    cap: float

    def __call__(self, z: torch.Tensor, y: torch.Tensor, need_grad: bool):
        t = z.div_(self.cap).tanh_()
        loss, g = self.inner(t * self.cap, y, need_grad)
        if g is None:
            return loss, None
        return loss, g.mul_(t.mul_(t).neg_().add_(1.0))


def _sweep(h, w, b, y, chunks: RowChunks, math: RowMath, want, *, row_loss=None, scale=1.0, row_scale=None,
           check_finite=False, kernel: RowKernel | None = None):
    """One pass over the chunks: losses into ``row_loss`` (when given) and, for each ``want`` (hidden,
    weight, bias) flag set, that gradient, with dL/dz scaled by ``scale`` and by ``row_scale[row]``.
    With a ``kernel`` the chunk's logits stay in the inputs' dtype and become dL/dz in place."""
    want_h, want_w, want_b = want
    need_grad = want_h or want_w or want_b
    compute = torch.promote_types(h.dtype, torch.float32)  # the math's dtype; also the accumulators'
    grad_h = (torch.empty_like(h) if chunks.all_valid else torch.zeros_like(h)) if want_h else None
    grad_w = torch.zeros(w.shape, dtype=compute, device=w.device) if want_w else None
    grad_b = torch.zeros(b.shape, dtype=compute, device=b.device) if want_b else None
    wt = w.t()
    for start, stop, idx in chunks:
        hc = RowChunks.take(h, start, stop, idx)
        z = hc @ wt if b is None else torch.addmm(b, hc, wt)
        if check_finite:
            _check_finite_chunk(z, start, idx)
        yc = RowChunks.take(y, start, stop, idx)
        if kernel is not None:
            rs = None if row_scale is None else RowChunks.take(row_scale, start, stop, idx)
            loss_c = kernel(z, yc, z if need_grad else None, scale=scale, row_scale=rs, rows=None)
            dz = z
        else:
            z = z.to(compute)  # a no-op for fp32/fp64: the matmul's output is already private to the math
            loss_c, dz = math(z, yc, need_grad)
        del z  # the math's scratch (e.g. the softmax): free it before the gradient matmuls
        if row_loss is not None:
            RowChunks.put_(row_loss, start, stop, idx, loss_c)
        if not need_grad:
            continue
        if kernel is None:
            if scale != 1.0:
                dz.mul_(scale)
            if row_scale is not None:
                dz.mul_(RowChunks.take(row_scale, start, stop, idx).unsqueeze(1))
            dz = dz.to(h.dtype)  # as the unfused path, whose logits gradient has the logits' dtype
        if want_h:
            RowChunks.put_(grad_h, start, stop, idx, dz @ w)
        if want_w:
            _accumulate_(grad_w, dz.t(), hc)
        if want_b:
            grad_b.add_(dz.sum(0, dtype=compute))
        del dz  # release this chunk's gradient before the next chunk's matmul
    if grad_w is not None:
        grad_w = grad_w.to(w.dtype)
    if grad_b is not None:
        grad_b = grad_b.to(b.dtype)
    return grad_h, grad_w, grad_b


_ADDMM_OUT_DTYPE: dict[str, bool] = {}


def _addmm_out_dtype_works(device: torch.device) -> bool:
    """Whether ``torch.addmm(acc, a, b, out_dtype=fp32, out=acc)`` accumulates half products into an fp32
    ``acc`` in place on this device (CUDA in recent torch); probed once on a tiny problem."""
    key = str(device)
    if key not in _ADDMM_OUT_DTYPE:
        ok = False
        if device.type == "cuda":
            try:
                g = torch.Generator(device=device).manual_seed(0)
                a = torch.randn(8, 16, device=device, generator=g, dtype=torch.bfloat16)
                b = torch.randn(16, 4, device=device, generator=g, dtype=torch.bfloat16)
                acc = torch.randn(8, 4, device=device, generator=g)
                want = acc + a.float() @ b.float()
                torch.addmm(acc, a, b, out_dtype=torch.float32, out=acc)
                ok = bool(torch.allclose(acc, want, rtol=1e-3, atol=1e-3))
            except (RuntimeError, TypeError, NotImplementedError):
                ok = False
        _ADDMM_OUT_DTYPE[key] = ok
    return _ADDMM_OUT_DTYPE[key]


def _accumulate_(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``acc += a @ b``; for half ``a``/``b`` and an fp32 ``acc``, without a rounded half product where the
    device can (else the product is formed in the half dtype, as one chunk of the unfused matmul)."""
    if a.dtype == acc.dtype:
        acc.addmm_(a, b)
    elif _addmm_out_dtype_works(acc.device):
        torch.addmm(acc, a, b, out_dtype=acc.dtype, out=acc)
    else:
        acc.add_(a @ b)


def _check_finite_chunk(z: torch.Tensor, start: int, idx: torch.Tensor | None) -> None:
    finite = torch.isfinite(z).all(dim=1)
    if not bool(finite.all()):
        k = int((~finite).nonzero()[0, 0])
        row = start + k if idx is None else int(idx[k])
        raise ValueError(f"non-finite logits (NaN or Inf) in flat row {row}")


class _FusedLinearRowLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w, b, y, math, ignore_index, reduction, denominator, chunk_rows, inplace, check_finite,  # type: ignore[override]
                kernel):
        with torch.autocast(h.device.type, enabled=False):  # inputs are already in the autocast dtype
            return _FusedLinearRowLoss._forward(
                ctx, h, w, b, y, math, ignore_index, reduction, denominator, chunk_rows, inplace, check_finite, kernel
            )

    @staticmethod
    def _forward(ctx, h, w, b, y, math, ignore_index, reduction, denominator, chunk_rows, inplace, check_finite,
                 kernel):
        want = tuple(ctx.needs_input_grad[:3])
        chunks = RowChunks(y, ignore_index, chunk_rows or 1)
        if not chunk_rows:
            chunks.chunk_rows = default_fused_chunk_rows(w.shape[0], chunks.n_valid, h.device)
        row_loss = torch.zeros(h.shape[0], dtype=torch.promote_types(h.dtype, torch.float32), device=h.device)
        ctx.reduction, ctx.inplace = reduction, inplace
        ctx.deferred = any(want) and reduction == "none"
        if ctx.deferred:  # per-row incoming gradients: the gradients are formed in backward
            _sweep(h, w, b, y, chunks, math, (False, False, False), row_loss=row_loss, check_finite=check_finite,
                   kernel=kernel)
            ctx.save_for_backward(h, w, b)
            ctx.chunks, ctx.math, ctx.y, ctx.kernel = chunks, math, y, kernel
            return row_loss
        scale = 1.0 / denominator if reduction == "mean" else 1.0
        grads = _sweep(h, w, b, y, chunks, math, want, row_loss=row_loss, scale=scale, check_finite=check_finite,
                       kernel=kernel)
        ctx.saved_grads = grads
        return reduce_rows(row_loss, reduction, denominator)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        if ctx.deferred:
            h, w, b = ctx.saved_tensors
            row_scale = grad_out.to(torch.promote_types(h.dtype, torch.float32))
            with torch.autocast(h.device.type, enabled=False):
                grads = _sweep(h, w, b, ctx.y, ctx.chunks, ctx.math, tuple(ctx.needs_input_grad[:3]), row_scale=row_scale,
                               kernel=ctx.kernel)
        else:
            grads = scale_saved_grads(take_saved_grads(ctx), grad_out, per_row=False, inplace=ctx.inplace)
        return (*grads, None, None, None, None, None, None, None, None, None)


def _flatten_linear_inputs(hidden, weight, target, bias, ignore_index):
    """Validates (..., H) hidden states, a (V, H) weight, an optional (V,) bias and (...) integer
    targets; returns (N, H) hidden, (N,) targets. Errors mirror :func:`dece.losses._checks.flatten_inputs`
    (the devices are checked by the caller, before autocast)."""
    if not torch.is_floating_point(hidden):
        raise ValueError(f"hidden must be a floating-point tensor, got dtype {hidden.dtype}")
    if target.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8, torch.int8):
        raise ValueError(f"target must be an integer tensor of class ids, got dtype {target.dtype}")
    if weight.dim() != 2:
        raise ValueError(f"weight must be a (V, H) matrix, got shape {tuple(weight.shape)}")
    vocab, width = weight.shape
    if hidden.dim() < 1 or hidden.shape[:-1] != target.shape or hidden.shape[-1] != width:
        raise ValueError(
            f"shape mismatch: hidden {tuple(hidden.shape)} must be target shape {tuple(target.shape)} + (H,) "
            f"with H = weight.shape[1] = {width} (weight {tuple(weight.shape)} is (V, H))"
        )
    if bias is not None and tuple(bias.shape) != (vocab,):
        raise ValueError(f"shape mismatch: bias {tuple(bias.shape)} must be (V,) = ({vocab},)")
    if vocab < 2:
        raise ValueError(f"the class dimension must have at least 2 entries, got V={vocab}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t.dtype != hidden.dtype:
            raise ValueError(
                f"hidden ({hidden.dtype}) and {name} ({t.dtype}) must have the same dtype "
                "(cast them, or run under torch.autocast, which casts both)"
            )
    h = hidden.reshape(-1, width)
    return h, check_targets(target.reshape(-1).long(), vocab, ignore_index)


def _autocast(hidden, weight, bias):
    """Under ``torch.autocast`` the unfused ``F.linear`` runs in the autocast dtype: do the same."""
    device = hidden.device.type
    if not torch.is_autocast_enabled(device):
        return hidden, weight, bias
    dtype = torch.get_autocast_dtype(device)
    cast = lambda t: t if t is None or t.dtype == dtype else t.to(dtype)  # noqa: E731
    return cast(hidden), cast(weight), cast(bias)


def fused_linear_row_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    row_math: RowMath,
    bias: torch.Tensor | None = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    denominator: float | None = None,
    chunk_rows: int | None = None,
    inplace_backward: bool = True,
    check_finite: bool = False,
    softcap: float | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """``row_math`` applied to ``hidden @ weight.T + bias`` without materialising it (module docstring).

    ``hidden`` (..., H), ``weight`` (V, H), ``bias`` (V,) or None, ``target`` (...) integer ids with
    ``ignore_index`` positions skipped. ``reduction``/``denominator`` as
    :func:`dece.losses.engine.chunked_row_loss`; ``reduction="none"`` returns ``target``'s shape.
    ``softcap`` applies the loss to ``softcap * tanh(logits / softcap)``. ``row_math`` must be built for
    ``V = weight.shape[0]``. ``backend="triton"``: the row math runs as its kernel, on each chunk's logits
    in place; ``"auto"``: so where the kernel runs (see :func:`dece.losses.engine.row_kernel`).
    """
    check_devices(hidden=hidden, weight=weight, target=target, bias=bias)  # before autocast reads the device
    hidden, weight, bias = _autocast(hidden, weight, bias)
    h, y = _flatten_linear_inputs(hidden, weight, target, bias, ignore_index)
    if chunk_rows is not None and int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    if softcap is not None:
        if not float(softcap) > 0:
            raise ValueError(f"softcap must be > 0, got {softcap!r}")
        if backend == "triton":
            raise ValueError("logit softcapping runs the PyTorch math, not the triton kernel: use backend='auto' "
                             "(it falls back) or 'torch'")
        row_math = SoftcapRowMath(row_math, float(softcap))
    denominator = resolve_denominator(y, ignore_index, reduction, denominator)
    kernel = row_kernel(row_math, backend, h)
    out = _FusedLinearRowLoss.apply(
        h, weight, bias, y, row_math, ignore_index, reduction, denominator, chunk_rows, inplace_backward, check_finite,
        kernel,
    )
    return out.view(target.shape) if reduction == "none" else out


class FusedLinearLoss(nn.Module):
    """Any loss of the family fused with the output head::

        fused = FusedLinearLoss(get_loss("dece", alpha_base=0.985))
        loss = fused(hidden, model.lm_head.weight, labels, epoch=epoch)   # = dece(hidden @ W.T, labels)

    Hyper-parameters, ``ignore_index``, ``reduction``, ``check_finite``, ``inplace_backward``, the mean's
    default divisor and ``chunk_size`` (rows per chunk; default :func:`default_fused_chunk_rows`: ~8M
    logits on CPU and ~128M on CUDA, at least 128 rows, at most 1/16 of the rows) are the wrapped loss's own.
    """

    def __init__(self, loss: TokenLoss) -> None:
        super().__init__()
        if not isinstance(loss, TokenLoss):
            raise TypeError(f"FusedLinearLoss wraps a dece TokenLoss (e.g. get_loss('dece')), got {type(loss).__name__}")
        self.loss = loss

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        bias: torch.Tensor | None = None,
        epoch: float | None = None,
        mean_denominator: float | None = None,
        *,
        softcap: float | None = None,
    ) -> torch.Tensor:
        loss = self.loss
        if mean_denominator is None:
            mean_denominator = loss.default_denominator(target.reshape(-1))
        return fused_linear_row_loss(
            hidden,
            weight,
            target,
            loss.row_math(weight.shape[0], epoch),
            bias,
            ignore_index=loss.ignore_index,
            reduction=loss.reduction,
            denominator=mean_denominator,
            chunk_rows=loss.chunk_size,
            inplace_backward=loss.inplace_backward,
            check_finite=loss.check_finite,
            softcap=softcap,
            backend=loss.backend,
        )

    def extra_repr(self) -> str:
        return "fused with the output head"


def fused_linear_dece(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
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
    """DeCE of ``hidden @ weight.T + bias`` without materialising the logits: the output head and the loss
    computed together, one chunk of rows at a time, the gradients of ``hidden``, ``weight`` and ``bias``
    accumulated inside forward. Equal to ``dece_loss(hidden @ weight.T + bias, target, ...)`` in value and
    gradients. The other keyword arguments (``epoch``, ``alpha``, ``alpha_base``, ``label_smoothing``,
    ``ignore_index``, ``reduction``, ``authors_compat``, ``mean_denominator``, ``check_finite``,
    ``inplace_backward``, ``backend``) are those of :func:`dece.losses.dece_loss`.

    Args:
        hidden: float tensor (..., H), the last hidden states.
        weight: the output head's weight (V, H).
        target: integer tensor (...), class ids or ``ignore_index``.
        bias: the head's bias (V,), or None.
        chunk_size: rows per chunk (default :func:`default_fused_chunk_rows`: about 8M logits on CPU, 128M
            on CUDA).

    Returns:
        As :func:`dece.losses.dece_loss` (a scalar, float32, or float64 for float64 inputs; per-token losses
        for ``reduction="none"``).

    Raises:
        ValueError: shapes that do not match (``hidden``'s last dimension against ``weight``), or as
            :func:`dece.losses.dece_loss`.
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
    return FusedLinearLoss(loss)(hidden, weight, target, bias, epoch, mean_denominator)
