"""``backend="triton"``: DeCE's row math as one Triton kernel, against the dense reference written from
the formula and against the PyTorch backend, in value and gradients, unfused and fused with the head.

Without a GPU the kernel runs on CPU tensors through Triton's interpreter (the same kernel source,
executed with NumPy); with one it runs compiled on CUDA. Tolerances: fp32 1e-5 relative on losses and
gradients (the same fp32 math, summed in another order); bf16/fp16 two roundings of that dtype on the
gradient's largest entry (the gradient is stored in the logits' dtype, then scaled by the incoming
gradient in backward, in both backends).
"""

import pytest
import torch

pytest.importorskip("triton", reason="triton has wheels for Linux only; the test extra installs it there")

from dece.errors import ConfigError  # noqa: E402
from dece.losses import dece_loss, fused_linear_dece, get_loss  # noqa: E402
from dece.losses import triton_dece  # noqa: E402 (without CUDA, conftest.py set TRITON_INTERPRET=1 before any triton import)
from dece.losses.hf_fused import fused_model_loss  # noqa: E402
from loss_reference import dece_dense  # noqa: E402

ON_CUDA = torch.cuda.is_available()

DEVICE = "cuda" if ON_CUDA else "cpu"
GRAD_ULP = {torch.float32: 1e-6, torch.bfloat16: 2**-6, torch.float16: 2**-9}


def _logits(n, v, dtype, *, spread=4.0, seed=0, ignore_every=0):
    g = torch.Generator().manual_seed(seed)
    z = (torch.randn(n, v, generator=g) * spread).to(DEVICE, dtype).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    if ignore_every:
        y[::ignore_every] = -100
    return z, y.to(DEVICE)


def _grad(loss_fn, z, go):
    out = loss_fn(z)
    (gz,) = torch.autograd.grad((out * go).sum(), [z])
    return out, gz


def _assert_grad_close(g, ref, dtype):
    assert g.dtype == ref.dtype == dtype
    tol = GRAD_ULP[dtype] * float(ref.abs().max())
    torch.testing.assert_close(g.float(), ref.float(), rtol=1e-5, atol=tol)


@pytest.fixture(params=[4096, 256], ids=["block4096", "block256"])
def block(request, monkeypatch):
    """The default block (a 5003-wide row spans two), and a small one so that the 1000- and 5003-wide rows
    span 4 and 20 blocks with a partial last one (the interpreter's cost grows with the blocks walked)."""
    monkeypatch.setattr(triton_dece, "_MAX_BLOCK", request.param)
    return request.param


DTYPES = [torch.float32, torch.bfloat16, torch.float16]
REDUCTIONS = ["mean", "sum", "none"]
# every dtype x reduction on small rows; on the large rows (slow in the interpreter with small blocks) every
# dtype and every reduction at least once
CASES = ([(d, n, v, r) for n, v in [(1, 2), (9, 7)] for d in DTYPES for r in REDUCTIONS]
         + [(d, n, v, r) for n, v in [(33, 1000), (5, 5003)]
            for d, r in [(torch.float32, "mean"), (torch.float32, "none"), (torch.bfloat16, "sum"), (torch.float16, "none")]])


@pytest.mark.parametrize("dtype,n,v,reduction", CASES)
def test_unfused_matches_dense_reference(block, dtype, n, v, reduction):
    z, y = _logits(n, v, dtype, ignore_every=4 if n > 4 else 0)
    go = torch.rand(n, device=DEVICE) + 0.5 if reduction == "none" else torch.tensor(1.3, device=DEVICE)
    kw = dict(alpha=0.9, label_smoothing=0.05, reduction=reduction)
    out, g = _grad(lambda t: dece_loss(t, y, backend="triton", **kw), z, go)
    ref, g_ref = _grad(lambda t: dece_dense(t, y, 0.9, 0.05, reduction=reduction), z, go)
    torch.testing.assert_close(out, ref.float(), rtol=1e-5, atol=1e-6)
    _assert_grad_close(g, g_ref.to(dtype), dtype)
    torch_out, g_torch = _grad(lambda t: dece_loss(t, y, backend="torch", **kw), z, go)
    torch.testing.assert_close(out, torch_out, rtol=1e-5, atol=1e-6)
    _assert_grad_close(g, g_torch, dtype)


@pytest.mark.parametrize("alpha,eps", [(1.0, 0.0), (1.0, 0.05), (0.3, 0.0), (0.985**12, 0.2)])
def test_hyper_parameter_edges(alpha, eps):
    z, y = _logits(17, 300, torch.float32, ignore_every=5)
    out, g = _grad(lambda t: dece_loss(t, y, alpha=alpha, label_smoothing=eps, backend="triton"), z, 1.0)
    ref, g_ref = _grad(lambda t: dece_dense(t, y, alpha, eps), z, 1.0)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    _assert_grad_close(g, g_ref, torch.float32)


def test_clamp_region_has_autograds_zero_gradient():
    """Rows so peaked that most p_j < 1e-7, labels included: the clamp's zero-gradient region must match."""
    z, y = _logits(12, 200, torch.float32, spread=30.0, seed=3)
    y[:4] = z.detach()[:4].argmin(dim=1)  # labels with p_y far below 1e-7
    out, g = _grad(lambda t: dece_loss(t, y, alpha=0.8, backend="triton"), z, 1.0)
    ref, g_ref = _grad(lambda t: dece_dense(t, y, 0.8, 0.05), z, 1.0)
    assert float((torch.softmax(z.detach(), 1) < 1e-7).float().mean()) > 0.5
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    _assert_grad_close(g, g_ref, torch.float32)


def test_all_rows_ignored_and_higher_rank_logits():
    z, y = _logits(6, 50, torch.float32)
    y[:] = -100
    out, g = _grad(lambda t: dece_loss(t, y, alpha=0.9, backend="triton"), z, 1.0)
    assert out.item() == 0.0 and torch.all(g == 0)
    z3 = z.detach().view(2, 3, 50).requires_grad_()
    y3 = torch.randint(0, 50, (2, 3), device=DEVICE)
    out = dece_loss(z3, y3, alpha=0.9, reduction="none", backend="triton")
    assert out.shape == (2, 3)
    torch.testing.assert_close(out, dece_dense(z3, y3, 0.9, 0.05, reduction="none").view(2, 3), rtol=1e-5, atol=1e-6)


def test_dece_auto_and_the_module_take_the_backend():
    z, y = _logits(10, 64, torch.float32, ignore_every=3)
    auto = get_loss("dece_auto", alpha_base=0.9, patience=1, backend="triton")
    auto.observe(1, 2.0)
    auto.observe(2, 2.5)  # no improvement: fires at the end of epoch 2, so alpha = 0.9 at epoch 3
    for loss in (get_loss("dece", alpha_base=0.9, backend="triton"), auto):
        assert loss.alpha_at(3) < 1
        out, g = _grad(lambda t, loss=loss: loss(t, y, 3), z, 1.0)
        ref, g_ref = _grad(lambda t, loss=loss: dece_dense(t, y, loss.alpha_at(3), 0.05), z, 1.0)
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        _assert_grad_close(g, g_ref, torch.float32)


def _fused_inputs(n, h, v, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    hid = torch.randn(n, h, generator=g).to(DEVICE, dtype).requires_grad_()
    w = (torch.randn(v, h, generator=g) / h**0.5 * 3).to(DEVICE, dtype).requires_grad_()
    b = torch.randn(v, generator=g).to(DEVICE, dtype).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g)
    y[::4] = -100
    return hid, w, b, y.to(DEVICE)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk", [None, 5])
def test_fused_matches_torch_backend(dtype, reduction, chunk):
    """Fused with the head (the chunk's logits become its gradient in place; ``none`` applies per-row
    incoming gradients inside the kernel in backward) against the PyTorch backend."""
    hid, w, b, y = _fused_inputs(37, 16, 300, dtype)
    params = [hid, w, b]
    go = torch.rand(37, device=DEVICE) + 0.5 if reduction == "none" else torch.tensor(0.7, device=DEVICE)
    results = {}
    for backend in ("triton", "torch"):
        out = fused_linear_dece(hid, w, y, b, alpha=0.85, reduction=reduction, chunk_size=chunk, backend=backend)
        results[backend] = (out, torch.autograd.grad((out * go).sum(), params))
    (out, grads), (ref, ref_grads) = results["triton"], results["torch"]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, gr in zip(grads, ref_grads):
        assert g.dtype == gr.dtype == dtype
        tol = (1e-5 if dtype == torch.float32 else 2e-2) * float(gr.abs().max())
        torch.testing.assert_close(g, gr, rtol=1e-4 if dtype == torch.float32 else 2e-2, atol=tol)


def test_fused_matches_dense_reference_fp32():
    hid, w, b, y = _fused_inputs(29, 8, 130, torch.float32, seed=2)
    out = fused_linear_dece(hid, w, y, b, alpha=0.9, chunk_size=7, backend="triton")
    ref = dece_dense(hid @ w.T + b, y, 0.9, 0.05)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, gr in zip(torch.autograd.grad(out, [hid, w, b]), torch.autograd.grad(ref, [hid, w, b])):
        torch.testing.assert_close(g, gr, rtol=1e-4, atol=1e-5 * float(gr.abs().max()))


def test_hf_model_with_the_triton_backend():
    import transformers as tf

    model = tf.LlamaForCausalLM(tf.LlamaConfig(
        vocab_size=61, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=16, tie_word_embeddings=False)).to(DEVICE)
    ids = torch.randint(3, 61, (2, 7), device=DEVICE)
    params = list(model.parameters())
    results = []
    for backend in ("triton", "torch"):
        out = fused_model_loss(model, {"input_ids": ids}, ids, get_loss("dece", alpha_base=0.9, backend=backend), epoch=2)
        results.append((out, torch.autograd.grad(out, params)))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-6)
    for g, gr in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(g, gr, rtol=1e-4, atol=1e-6)


def test_errors_name_the_backend_and_the_fix(monkeypatch):
    with pytest.raises(ConfigError, match="backend must be one of auto, torch for GCELoss"):
        get_loss("gce", backend="triton")
    with pytest.raises(ConfigError, match="backend must be one of auto, torch, triton for DeCELoss, got 'cuda'"):
        get_loss("dece", backend="cuda")
    z, y = _logits(4, 9, torch.float64)
    with pytest.raises(ValueError, match="float64.*backend='torch'"):
        dece_loss(z, y, alpha=0.9, backend="triton")
    hid, w, b, y = _fused_inputs(6, 4, 9, torch.float32)
    from dece.losses import FusedLinearLoss

    with pytest.raises(ValueError, match="softcapping runs the PyTorch math.*backend=.auto."):
        FusedLinearLoss(get_loss("dece", alpha=0.9, backend="triton"))(hid, w, y, softcap=2.0)
    if not ON_CUDA:
        monkeypatch.setattr(triton_dece, "_INTERPRETED", False)
        z, y = _logits(4, 9, torch.float32)
        with pytest.raises(ValueError, match="runs on CUDA tensors, got logits on cpu"):
            dece_loss(z, y, alpha=0.9, backend="triton")


def test_auto_runs_the_kernel_where_it_runs_and_the_torch_math_elsewhere(monkeypatch):
    """``backend="auto"``: the kernel on CUDA logits of a kernel dtype, the PyTorch math otherwise (CPU logits,
    float64, softcapping, a loss without a kernel), with the same values either way."""
    calls = []
    real = triton_dece.dece_rows
    monkeypatch.setattr(triton_dece, "dece_rows", lambda *a, **k: calls.append(a[0].dtype) or real(*a, **k))
    cases = [(torch.float32, ON_CUDA), (torch.bfloat16, ON_CUDA), (torch.float64, False)]
    for dtype, kernel_expected in cases:
        calls.clear()
        z, y = _logits(6, 11, dtype, ignore_every=3)
        out, g = _grad(lambda t: dece_loss(t, y, alpha=0.9, backend="auto"), z, torch.tensor(1.0, device=DEVICE))
        ref, g_ref = _grad(lambda t: dece_loss(t, y, alpha=0.9, backend="torch"), z, torch.tensor(1.0, device=DEVICE))
        assert calls == ([dtype] if kernel_expected else []), dtype
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g.float(), g_ref.float(), rtol=1e-5, atol=GRAD_ULP.get(dtype, 1e-6) * float(g_ref.abs().max()))
    hid, w, b, y = _fused_inputs(6, 4, 9, torch.float32)
    calls.clear()
    fused = fused_linear_dece(hid, w, y, b, alpha=0.9, backend="auto")
    assert calls == ([torch.float32] if ON_CUDA else [])
    torch.testing.assert_close(fused, fused_linear_dece(hid, w, y, b, alpha=0.9), rtol=1e-5, atol=1e-6)
    calls.clear()
    from dece.losses import FusedLinearLoss

    FusedLinearLoss(get_loss("dece", alpha=0.9, backend="auto"))(hid, w, y, softcap=2.0)
    get_loss("gce", backend="auto")(hid @ w.T, y)
    assert calls == []
