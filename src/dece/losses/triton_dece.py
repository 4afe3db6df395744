r"""DeCE's per-row math as one Triton kernel (``backend="triton"``).

The PyTorch row math (:class:`dece.losses.dece.DeCERowMath`) runs ~15 elementwise passes over a chunk
of logits (upcast, softmax, clamp, blend, log, reciprocal, softmax VJP, scale, downcast), each a full
read and write of memory. This kernel does the same math with one program per row in three reads of
the row's logits and one write of its gradient, in the logits' own dtype (fp32 arithmetic inside):

1. online max and normaliser :math:`m, d` of the row (:math:`p_j = e^{z_j - m} / d`);
2. :math:`L = -\sum_j y'_j \log q_j` and :math:`S = \sum_j p_j g_j` with
   :math:`q_j = \alpha \max(p_j, 10^{-7}) + (1-\alpha) y'_j` and
   :math:`g_j = -\alpha y'_j / q_j` (0 where :math:`p_j < 10^{-7}`, the clamp's zero-gradient region);
3. :math:`\partial L/\partial z_j = p_j (g_j - S)`, times the reduction's scale (and a per-row scale),
   stored in the gradient buffer's dtype, which may be the logits buffer itself (in place).

These are the equations of :mod:`dece.losses.dece` (paper, Sec. 3) term by term; only the summation
order differs, so results agree with the PyTorch backend to fp32 rounding.

Runs compiled on CUDA tensors; ``TRITON_INTERPRET=1`` (set before this module is imported) runs the same
kernel on CPU tensors through Triton's interpreter, which is how the test suite checks it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from dece.losses.dece import P_MIN

# Columns a program handles per step of its loops over the row.
_MAX_BLOCK = 4096


@triton.jit
def _dece_terms(z_row, offs, inside, y, m, d, alpha, c, h, p_min):
    """p_j, y'_j log q_j and g_j = dL/dp_j for the columns ``offs`` of a row with max ``m`` and normaliser ``d``."""
    x = tl.load(z_row + offs, mask=inside, other=-float("inf")).to(tl.float32)
    p = tl.exp(x - m) / d
    t = tl.where(offs == y, h, c)
    q = alpha * tl.maximum(p, p_min) + (1.0 - alpha) * t
    g = tl.where(p < p_min, 0.0, -alpha * t / q)
    return p, tl.where(inside, t * tl.log(q), 0.0), g


@triton.jit
def _dece_rows_kernel(
    Z, stride_z, G, stride_g, Y, ROWS, LOSS, ROW_SCALE,
    n_cols, alpha, c, h, scale, p_min,
    HAS_ROWS: tl.constexpr, HAS_GRAD: tl.constexpr, HAS_ROW_SCALE: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    if HAS_ROWS:
        row = tl.load(ROWS + pid).to(tl.int64)
    else:
        row = pid.to(tl.int64)
    z_row = Z + row * stride_z
    y = tl.load(Y + row).to(tl.int64)
    cols = tl.arange(0, BLOCK)

    # 1. online max m and normaliser d of the row
    m = -float("inf")
    d = 0.0
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        x = tl.load(z_row + offs, mask=offs < n_cols, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new

    # 2. the loss and S = <p, g>
    log_sum = 0.0
    pg = 0.0
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        p, t_log_q, g = _dece_terms(z_row, offs, offs < n_cols, y, m, d, alpha, c, h, p_min)
        log_sum += tl.sum(t_log_q, axis=0)
        pg += tl.sum(p * g, axis=0)
    tl.store(LOSS + pid, -log_sum)

    # 3. dL/dz = p (g - S), scaled, in the gradient buffer's dtype
    if HAS_GRAD:
        factor = scale
        if HAS_ROW_SCALE:
            factor = factor * tl.load(ROW_SCALE + pid).to(tl.float32)
        g_row = G + row * stride_g
        for start in range(0, n_cols, BLOCK):
            offs = start + cols
            inside = offs < n_cols
            p, _, g = _dece_terms(z_row, offs, inside, y, m, d, alpha, c, h, p_min)
            tl.store(g_row + offs, (p * (g - pg) * factor).to(G.dtype.element_ty), mask=inside)


_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Decorated under TRITON_INTERPRET=1: the kernel runs on CPU tensors through Triton's interpreter.
_INTERPRETED = type(_dece_rows_kernel).__name__ == "InterpretedFunction"


def _check(z: torch.Tensor, grad: torch.Tensor | None) -> None:
    if z.device.type != "cuda" and not _INTERPRETED:
        raise ValueError(
            f"backend='triton' runs on CUDA tensors, got logits on {z.device} (use backend='torch' there; "
            "TRITON_INTERPRET=1 runs the kernel on CPU through Triton's interpreter, for testing)"
        )
    if z.dtype not in _DTYPES:
        raise ValueError(f"backend='triton' computes in fp32 and takes fp32/bf16/fp16 logits, got {z.dtype} "
                         "(use backend='torch' for float64)")
    for name, t in (("logits", z), ("gradient buffer", grad)):
        if t is not None and t.stride(1) != 1:
            raise ValueError(f"backend='triton' needs the {name} contiguous along the vocabulary")


def dece_rows(
    z: torch.Tensor,
    y: torch.Tensor,
    grad: torch.Tensor | None,
    *,
    alpha: float,
    label_smoothing: float,
    scale: float = 1.0,
    row_scale: torch.Tensor | None = None,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """DeCE of the rows of ``z`` (n, V) with labels ``y`` (n,) in [0, V).

    ``rows`` (k,) restricts the work to those row indices (the others are neither read nor written);
    the returned losses (k,) or (n,) are fp32 and follow ``rows``' order. When ``grad`` (n, V) is given,
    ``scale * row_scale[i] * dL/dz`` is written into its rows (``grad`` may be ``z`` itself);
    ``row_scale`` is indexed like the returned losses.
    """
    _check(z, grad)
    n, vocab = z.shape
    k = n if rows is None else rows.numel()
    loss = torch.empty(k, dtype=torch.float32, device=z.device)
    if k == 0:
        return loss
    eps = float(label_smoothing)
    block = min(_MAX_BLOCK, triton.next_power_of_2(vocab))
    _dece_rows_kernel[(k,)](
        z, z.stride(0), grad if grad is not None else z, grad.stride(0) if grad is not None else 0,
        y, rows if rows is not None else y, loss, row_scale if row_scale is not None else loss,
        vocab, float(alpha), eps / (vocab - 1), 1.0 - eps, float(scale), P_MIN,
        HAS_ROWS=rows is not None, HAS_GRAD=grad is not None, HAS_ROW_SCALE=row_scale is not None,
        BLOCK=block, num_warps=8 if block >= 2048 else 4,
    )
    return loss
