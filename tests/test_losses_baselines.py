"""Every baseline loss against its own dense formula, plus the registry."""

import pytest
import torch
import torch.nn.functional as F

from dece.errors import ConfigError, UnknownNameError
from dece.losses import LOSSES, get_loss
from loss_reference import ce_dense, gce_dense, in_trust_dense, label_smoothing_dense, sce_dense

CASES = {
    "ce": ({}, lambda z, y, r: ce_dense(z, y, reduction=r)),
    "label_smoothing": ({"label_smoothing": 0.1}, lambda z, y, r: label_smoothing_dense(z, y, 0.1, reduction=r)),
    "gce": ({"q": 0.7}, lambda z, y, r: gce_dense(z, y, 0.7, reduction=r)),
    "in_trust": ({}, lambda z, y, r: in_trust_dense(z, y, 0.5, 0.2, 0.8, reduction=r)),
    "sce": ({"ce_weight": 0.1, "rce_weight": 1.0}, lambda z, y, r: sce_dense(z, y, 0.1, 1.0, reduction=r)),
}


def _inputs(n, v, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, v, generator=g, dtype=torch.float64) * scale).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    y[1::4] = -100
    return z, y


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("n,v,scale", [(9, 4, 1.0), (70, 129, 3.0), (40, 30, 25.0)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_baseline_matches_dense_formula(name, n, v, scale, reduction):
    kwargs, ref_fn = CASES[name]
    z, y = _inputs(n, v, scale)
    out = get_loss(name, reduction=reduction, chunk_size=8, **kwargs)(z, y)
    ref = ref_fn(z, y, reduction)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    (g,) = torch.autograd.grad(out.sum(), z)
    (gr,) = torch.autograd.grad(ref.sum(), z)
    torch.testing.assert_close(g, gr, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", sorted(CASES))
def test_baseline_gradcheck(name):
    kwargs, _ = CASES[name]
    z, y = _inputs(6, 5, scale=1.0)
    fn = get_loss(name, inplace_backward=False, **kwargs)
    assert torch.autograd.gradcheck(lambda t: fn(t, y), (z,))


def test_ce_and_label_smoothing_equal_pytorch():
    z, y = _inputs(50, 33)
    torch.testing.assert_close(get_loss("ce")(z, y), F.cross_entropy(z, y))
    torch.testing.assert_close(
        get_loss("label_smoothing", label_smoothing=0.2)(z, y), F.cross_entropy(z, y, label_smoothing=0.2)
    )


def test_bf16_baselines_close_to_fp32():
    z, y = _inputs(32, 64)
    zb = z.detach().bfloat16().requires_grad_()
    for name in CASES:
        kwargs, ref_fn = CASES[name]
        out = get_loss(name, **kwargs)(zb, y)
        (g,) = torch.autograd.grad(out, zb)
        assert g.dtype == torch.bfloat16
        z32 = zb.detach().double().requires_grad_()
        ref = ref_fn(z32, y, "mean")
        torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)


def test_registry_lists_all_losses_and_rejects_bad_names_and_params():
    assert LOSSES.names() == ["ce", "dece", "dece_auto", "gce", "in_trust", "label_smoothing", "sce"]
    with pytest.raises(UnknownNameError, match="valid names: ce, dece"):
        get_loss("decee")
    with pytest.raises(ConfigError, match="valid parameters: q"):
        get_loss("gce", qq=0.5)
    with pytest.raises(ConfigError, match=r"q must lie in \(0, 1\]"):
        get_loss("gce", q=0.0)
