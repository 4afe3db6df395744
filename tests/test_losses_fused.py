"""The fused head + loss against the unfused path ``loss(hidden @ W.T + b)``: values and the gradients
of hidden, weight and bias, every reduction, ignored rows, chunkings, fp64/fp32/bf16, every loss.

Tolerances: fp64 1e-10 relative (the same math in a different order); fp32 1e-5 on the loss, 1e-4
relative on gradients; bf16 (inputs and matmuls in bf16, math in fp32 in both paths) 2e-3 relative on
the loss and 2e-2 of the gradient's largest entry (a few bf16 roundings of the logits gradient and of
the chunk products of the weight gradient).
"""

import pytest
import torch
import torch.nn.functional as F

from dece.errors import ConfigError
from dece.losses import FusedLinearLoss, dece_loss, fused_linear_dece, fused_linear_row_loss, get_loss
from dece.losses.dece import DeCERowMath

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
BASELINES = {
    "ce": {},
    "label_smoothing": {"label_smoothing": 0.1},
    "gce": {"q": 0.7},
    "in_trust": {},
    "sce": {"ce_weight": 0.1, "rce_weight": 1.0},
    "dece": {"alpha": 0.9, "label_smoothing": 0.05},
}


def _inputs(n, h, v, dtype=torch.float64, device="cpu", ignore_every=3, bias=True, seed=0, scale=1.0, lead=()):
    g = torch.Generator().manual_seed(seed)
    hid = (torch.randn(*lead, n, h, generator=g, dtype=torch.float64) * scale).to(device, dtype).requires_grad_()
    w = (torch.randn(v, h, generator=g, dtype=torch.float64) / h**0.5 * 2).to(device, dtype).requires_grad_()
    b = (torch.randn(v, generator=g, dtype=torch.float64).to(device, dtype).requires_grad_()) if bias else None
    y = torch.randint(0, v, (*lead, n), generator=g)
    if ignore_every:
        y[..., ::ignore_every] = -100
    return hid, w, b, y.to(device)


def _grads(out, params, go):
    return torch.autograd.grad((out * go).sum(), [p for p in params if p is not None])


def _check(out, ref, params, reduction, rtol, atol, grtol, gatol, rel_to_max=False):
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    go = torch.randn_like(ref) if reduction == "none" else torch.tensor(1.7, dtype=ref.dtype, device=ref.device)
    for g, gr in zip(_grads(out, params, go), _grads(ref, params, go)):
        assert g.dtype == gr.dtype and g.shape == gr.shape
        tol = gatol * float(gr.abs().max()) if rel_to_max else gatol
        torch.testing.assert_close(g, gr, rtol=grtol, atol=tol)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n,h,v,chunk", [(1, 3, 2, None), (13, 8, 5, 4), (70, 16, 129, 1), (130, 32, 257, 33), (64, 24, 300, None)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias", [True, False])
def test_fp64_matches_unfused(device, n, h, v, chunk, reduction, bias):
    hid, w, b, y = _inputs(n, h, v, device=device, ignore_every=3 if n > 1 else 0, bias=bias, scale=2.0)
    out = fused_linear_dece(hid, w, y, b, alpha=0.85, label_smoothing=0.05, reduction=reduction, chunk_size=chunk)
    ref = dece_loss(F.linear(hid, w, b), y, alpha=0.85, label_smoothing=0.05, reduction=reduction)
    _check(out, ref, (hid, w, b), reduction, 1e-10, 1e-12, 1e-10, 1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_fp32_matches_unfused_and_chunking_is_invisible(device):
    hid, w, b, y = _inputs(300, 64, 1000, dtype=torch.float32, device=device, ignore_every=4)
    for chunk in (1, 7, 64, 299, None):
        out = fused_linear_dece(hid, w, y, b, epoch=2, alpha_base=0.9, chunk_size=chunk)
        ref = dece_loss(F.linear(hid, w, b), y, epoch=2, alpha_base=0.9)
        _check(out, ref, (hid, w, b), "mean", 1e-5, 1e-6, 1e-4, 1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bf16_matches_unfused_with_stated_tolerance(device, reduction):
    hid, w, b, y = _inputs(200, 64, 700, dtype=torch.bfloat16, device=device, ignore_every=5)
    out = fused_linear_dece(hid, w, y, b, alpha=0.9, reduction=reduction, chunk_size=48)
    ref = dece_loss(F.linear(hid, w, b), y, alpha=0.9, reduction=reduction)
    assert out.dtype == torch.float32  # the loss is fp32 as dece_loss's; gradients come back in bf16
    _check(out, ref, (hid, w, b), reduction, 2e-3, 1e-4, 0.0, 2e-2, rel_to_max=True)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_loss_of_the_family_fused(device, name):
    hid, w, b, y = _inputs(90, 16, 77, device=device, ignore_every=4, scale=3.0)
    for reduction in ("mean", "sum", "none"):
        loss = get_loss(name, reduction=reduction, chunk_size=16, **BASELINES[name])
        out = FusedLinearLoss(loss)(hid, w, y, b)
        ref = loss(F.linear(hid, w, b), y)
        _check(out, ref, (hid, w, b), reduction, 1e-10, 1e-12, 1e-9, 1e-12)


def test_higher_rank_hidden_none_reduction_keeps_target_shape():
    hid, w, b, y = _inputs(7, 8, 11, lead=(3,), ignore_every=2)
    out = fused_linear_dece(hid, w, y, b, epoch=3, alpha_base=0.9, reduction="none")
    assert out.shape == (3, 7) and torch.all(out[:, ::2] == 0)
    ref = dece_loss(F.linear(hid, w, b), y, epoch=3, alpha_base=0.9, reduction="none")
    _check(out, ref, (hid, w, b), "none", 1e-10, 1e-12, 1e-10, 1e-12)


def test_frozen_head_and_frozen_hidden():
    hid, w, b, y = _inputs(40, 8, 30)
    w.requires_grad_(False)
    b.requires_grad_(False)
    out = fused_linear_dece(hid, w, y, b, alpha=0.9)
    (g,) = torch.autograd.grad(out, hid)
    (gr,) = torch.autograd.grad(dece_loss(F.linear(hid, w, b), y, alpha=0.9), hid)
    torch.testing.assert_close(g, gr)
    hid2 = hid.detach()  # only the head trains
    w.requires_grad_(True)
    gw = torch.autograd.grad(fused_linear_dece(hid2, w, y, alpha=0.9), w)[0]
    gwr = torch.autograd.grad(dece_loss(hid2 @ w.T, y, alpha=0.9), w)[0]
    torch.testing.assert_close(gw, gwr)
    with torch.no_grad():
        torch.testing.assert_close(fused_linear_dece(hid, w, y, b, alpha=0.9), out.detach())


def test_mean_denominator_authors_compat_and_all_ignored():
    hid, w, b, y = _inputs(12, 6, 9, ignore_every=3)
    for kw in ({"mean_denominator": 50.0}, {"authors_compat": True}):
        out = fused_linear_dece(hid, w, y, b, alpha=0.9, **kw)
        ref = dece_loss(F.linear(hid, w, b), y, alpha=0.9, **kw)
        _check(out, ref, (hid, w, b), "mean", 1e-12, 1e-12, 1e-10, 1e-12)
    y_all = torch.full_like(y, -100)
    out = fused_linear_dece(hid, w, y_all, b, alpha=0.9)
    assert out.item() == 0.0
    assert all(torch.all(g == 0) for g in torch.autograd.grad(out, (hid, w, b)))


def test_backward_twice_raises_unless_opted_out_and_none_reduction_recomputes():
    hid, w, b, y = _inputs(10, 4, 6)
    out = fused_linear_dece(hid, w, y, b, alpha=0.9)
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward"):
        out.backward()
    for kw in ({"inplace_backward": False}, {"reduction": "none"}):
        hid.grad = w.grad = b.grad = None
        out = fused_linear_dece(hid, w, y, b, alpha=0.9, **kw).sum()
        out.backward(retain_graph=True)
        first = [t.grad.clone() for t in (hid, w, b)]
        out.backward()
        for t, f in zip((hid, w, b), first):
            torch.testing.assert_close(t.grad, 2 * f)


def test_gradcheck_fp64():
    hid, w, b, y = _inputs(6, 3, 5, scale=1.0)
    for reduction in ("mean", "sum", "none"):
        fn = lambda a, c, d: fused_linear_dece(a, c, y, d, alpha=0.8, reduction=reduction, inplace_backward=False)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (hid, w, b))


def test_softcap_equals_unfused_softcapped_logits():
    hid, w, b, y = _inputs(50, 8, 40, scale=4.0)
    math = DeCERowMath(alpha=0.9, label_smoothing=0.05, vocab=40)
    out = fused_linear_row_loss(hid, w, y, math, b, softcap=3.0, chunk_rows=16)
    z = F.linear(hid, w, b)
    ref = dece_loss(3.0 * torch.tanh(z / 3.0), y, alpha=0.9)
    _check(out, ref, (hid, w, b), "mean", 1e-10, 1e-12, 1e-10, 1e-12)


def test_autocast_matches_unfused_under_autocast():
    hid, w, b, y = _inputs(64, 16, 100, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fused_linear_dece(hid, w, y, b, alpha=0.9)
        ref = dece_loss(F.linear(hid, w, b), y, alpha=0.9)
    assert ref.dtype == out.dtype == torch.float32
    _check(out, ref, (hid, w, b), "mean", 2e-3, 1e-4, 0.0, 2e-2, rel_to_max=True)


def test_errors_mirror_dece_loss():
    hid, w, b, y = _inputs(4, 6, 5)
    with pytest.raises(ValueError, match="shape mismatch: hidden"):
        fused_linear_dece(hid, w[:, :5], y, alpha=0.9)
    with pytest.raises(ValueError, match="shape mismatch: hidden"):
        fused_linear_dece(hid, w, y[:3], alpha=0.9)
    with pytest.raises(ValueError, match=r"shape mismatch: bias \(4,\) must be \(V,\) = \(5,\)"):
        fused_linear_dece(hid, w, y, b[:4], alpha=0.9)
    with pytest.raises(ValueError, match=r"weight must be a \(V, H\) matrix"):
        fused_linear_dece(hid, w[0], y, alpha=0.9)
    with pytest.raises(ValueError, match="same dtype"):
        fused_linear_dece(hid.float(), w, y, alpha=0.9)
    with pytest.raises(ValueError, match="floating-point"):
        fused_linear_dece(hid.long(), w, y, alpha=0.9)
    with pytest.raises(ValueError, match="integer tensor"):
        fused_linear_dece(hid, w, y.double(), alpha=0.9)
    with pytest.raises(ValueError, match=r"target id 5 at flat position 1 is outside \[0, 5\)"):
        fused_linear_dece(hid, w, torch.tensor([0, 5, 1, 2]), alpha=0.9)
    with pytest.raises(ValueError, match="exactly one"):
        fused_linear_dece(hid, w, y, epoch=1, alpha=0.9)
    with pytest.raises(ValueError, match="epoch is a finite number counted from 1"):
        fused_linear_dece(hid, w, y, epoch=0)
    with pytest.raises(ConfigError, match=r"label_smoothing must lie in \[0, 1\)"):
        fused_linear_dece(hid, w, y, alpha=0.9, label_smoothing=1.0)
    with pytest.raises(ConfigError, match="chunk_size must be a whole number of rows >= 1"):
        fused_linear_dece(hid, w, y, alpha=0.9, chunk_size=0)
    with pytest.raises(TypeError, match="wraps a dece TokenLoss"):
        FusedLinearLoss(torch.nn.CrossEntropyLoss())
    bad = hid.detach().clone()
    bad[2, 1] = float("inf")
    with pytest.raises(ValueError, match="non-finite logits .* row 2"):
        fused_linear_dece(bad, w, torch.tensor([0, -100, 1, 2]), alpha=0.9, check_finite=True, chunk_size=1)
