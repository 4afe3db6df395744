"""DeCE against the dense reference written from the paper's formula: values and gradients."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dece.losses import DeCELoss, dece_alpha, dece_loss
from loss_reference import dece_dense, dece_grad_bound, dece_loss_bound


def _inputs(n, v, dtype=torch.float64, ignore_every=4, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, v, generator=g, dtype=torch.float64) * scale).to(dtype).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    if ignore_every:
        y[::ignore_every] = -100
    return z, y


@pytest.mark.parametrize("n,v", [(1, 2), (7, 5), (33, 50), (130, 257)])
@pytest.mark.parametrize("alpha,eps", [(1.0, 0.0), (0.985, 0.05), (0.9, 0.1), (0.3, 0.4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_value_and_grad_match_dense_reference_fp64(n, v, alpha, eps, reduction):
    z, y = _inputs(n, v, ignore_every=3 if n > 1 else 0)
    out = dece_loss(z, y, alpha=alpha, label_smoothing=eps, reduction=reduction, chunk_size=16)
    ref = dece_dense(z, y, alpha, eps, reduction=reduction)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(out) if reduction == "none" else torch.tensor(1.7, dtype=out.dtype)
    (g,) = torch.autograd.grad((out * w).sum(), z)
    (gr,) = torch.autograd.grad((ref * w).sum(), z)
    torch.testing.assert_close(g, gr, rtol=1e-9, atol=1e-12)


def test_fp32_matches_reference_and_chunking_is_invisible():
    z, y = _inputs(300, 1000, dtype=torch.float32)
    ref = dece_dense(z, y, 0.95, 0.05)
    (gr,) = torch.autograd.grad(ref, z)
    for chunk in (1, 7, 64, None):
        out = dece_loss(z, y, alpha=0.95, chunk_size=chunk)
        (g,) = torch.autograd.grad(out, z)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g, gr, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_inputs_compute_in_fp32_and_return_grad_in_input_dtype(dtype):
    z, y = _inputs(64, 300, dtype=dtype)
    out = dece_loss(z, y, epoch=2, alpha_base=0.9)
    assert out.dtype == torch.float32
    (g,) = torch.autograd.grad(out, z)
    assert g.dtype == dtype
    z32 = z.detach().float().requires_grad_()
    ref = dece_dense(z32, y, 0.9**2, 0.05)
    (gr,) = torch.autograd.grad(ref, z32)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g.float(), gr, rtol=2e-2, atol=1e-5)


def test_gradcheck_fp64_all_reductions():
    z, y = _inputs(9, 6, scale=1.0)
    for reduction in ("mean", "sum", "none"):
        fn = DeCELoss(alpha=0.8, label_smoothing=0.1, reduction=reduction, inplace_backward=False)
        assert torch.autograd.gradcheck(lambda t: fn(t, y), (z,))


def test_clamp_region_gradient_matches_autograd_exactly():
    # extreme logits put many probabilities below 1e-7, where the clamp zeroes the gradient
    z, y = _inputs(40, 30, scale=25.0)
    out = dece_loss(z, y, alpha=0.7, label_smoothing=0.05)
    ref = dece_dense(z, y, 0.7, 0.05)
    assert (torch.softmax(z.detach(), 1) < 1e-7).any()
    (g,) = torch.autograd.grad(out, z)
    (gr,) = torch.autograd.grad(ref, z)
    torch.testing.assert_close(g, gr, rtol=1e-9, atol=1e-12)


def test_equals_cross_entropy_when_eps_0_and_alpha_1():
    z, y = _inputs(50, 40, scale=1.0)  # probabilities stay far above the clamp
    out = dece_loss(z, y, alpha=1.0, label_smoothing=0.0)
    ref = F.cross_entropy(z, y)
    torch.testing.assert_close(out, ref)
    (g,) = torch.autograd.grad(out, z)
    (gr,) = torch.autograd.grad(ref, z)
    torch.testing.assert_close(g, gr)


def test_epoch_schedule_and_higher_rank_inputs():
    assert dece_alpha(0.9, 1) == pytest.approx(0.9)
    assert dece_alpha(0.9, 3) == pytest.approx(0.729)
    z = torch.randn(2, 5, 11, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 11, (2, 5))
    y[0, :2] = -100
    out = dece_loss(z, y, epoch=3, alpha_base=0.9, reduction="none")
    assert out.shape == (2, 5)
    assert torch.all(out[0, :2] == 0)
    ref = dece_dense(z, y, 0.729, 0.05, reduction="none").view(2, 5)
    torch.testing.assert_close(out, ref)


def test_module_preset_alpha_and_epoch_exclusive():
    z, y = _inputs(5, 7)
    preset = DeCELoss(alpha=0.5)
    torch.testing.assert_close(preset(z, y), dece_loss(z, y, alpha=0.5))
    with pytest.raises(ValueError, match="preset alpha"):
        preset(z, y, 2)
    with pytest.raises(ValueError, match="epoch"):
        DeCELoss()(z, y)
    with pytest.raises(ValueError, match="exactly one"):
        dece_loss(z, y, epoch=1, alpha=0.5)


def test_authors_compat_divides_by_all_positions_with_pad_id_as_ignore_index():
    pad = 0
    z, y = _inputs(12, 9, ignore_every=0)
    y[::3] = pad
    compat = dece_loss(z, y, alpha=0.9, ignore_index=pad, authors_compat=True)
    ours = dece_loss(z, y, alpha=0.9, ignore_index=pad)
    n_valid = int((y != pad).sum())
    torch.testing.assert_close(compat, ours * n_valid / y.numel())
    # the authors' formulation: mask rows whose smoothed target's argmax is the pad id, then .sum(1).mean()
    V = z.shape[1]
    t = torch.full((12, V), 0.05 / (V - 1), dtype=z.dtype).scatter_(1, y[:, None], 0.95)
    p = torch.clamp(torch.softmax(z, 1), 1e-7, 1.0)
    q = 0.9 * p + 0.1 * t
    mask = (t.argmax(1) != pad).to(z.dtype)[:, None]
    authors = -(mask * t * torch.log(q)).sum(dim=1).mean()
    torch.testing.assert_close(compat, authors)


def test_mean_over_no_valid_token_is_zero_not_nan():
    z, y = _inputs(4, 5, ignore_every=1)
    out = dece_loss(z, y, alpha=0.9)
    assert out.item() == 0.0
    (g,) = torch.autograd.grad(out, z)
    assert torch.all(g == 0)


def test_backward_twice_raises_clearly_and_opt_out_allows_it():
    z, y = _inputs(6, 5)
    out = dece_loss(z, y, alpha=0.9)
    out.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward"):
        out.backward()
    z.grad = None
    out = dece_loss(z, y, alpha=0.9, inplace_backward=False)
    out.backward(retain_graph=True)
    first = z.grad.clone()
    out.backward()
    torch.testing.assert_close(z.grad, 2 * first)


def test_no_grad_path_gives_same_value():
    z, y = _inputs(20, 13)
    with torch.no_grad():
        a = dece_loss(z, y, alpha=0.9)
    torch.testing.assert_close(a, dece_loss(z, y, alpha=0.9).detach())


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 12),
    v=st.integers(2, 40),
    alpha=st.floats(0.01, 0.99),
    eps=st.floats(0.0, 0.5),
    scale=st.floats(0.0, 30.0),
    seed=st.integers(0, 10_000),
)
def test_loss_and_gradient_are_bounded(n, v, alpha, eps, scale, seed):
    z, y = _inputs(n, v, seed=seed, scale=scale, ignore_every=0)
    rows = dece_loss(z, y, alpha=alpha, label_smoothing=eps, reduction="none")
    assert torch.all(rows <= dece_loss_bound(alpha, eps, v) + 1e-9)
    (g,) = torch.autograd.grad(rows.sum(), z)
    assert torch.all(g.abs().sum(dim=1) <= dece_grad_bound(alpha) + 1e-9)
    assert math.isfinite(float(rows.detach().sum()))
