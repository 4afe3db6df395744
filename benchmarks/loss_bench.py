"""Forward+backward time and peak memory of the DeCE loss against the dense formulation and
PyTorch's cross-entropy. Run by hand:
``python benchmarks/loss_bench.py [--device cuda] [--dtypes fp32,bf16] [--threads 1]``.

On CPU each (implementation, size, dtype) runs in its own subprocess so that peak RSS is not polluted by the
others; on CUDA they share one process (``torch.cuda.max_memory_allocated`` is reset per measurement, which is
exact there, and a subprocess per row would cost a CUDA start each). Peak = growth of the max RSS (CPU) or of
allocated CUDA memory over the inputs, as a multiple of the logits' bytes. Time = median of ``--repeats`` runs
after a warm-up. On CUDA ``dece_loss_triton`` (``backend="triton"``) joins the table; the issue's target for
it: at most 1.1x the time of PyTorch's label-smoothed CE.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from measure import DTYPES, peak_and_median_time, sync

IMPLS = ("ce_label_smoothing", "dense_dece", "dece_loss")
CUDA_IMPLS = ("dece_loss_triton",)
SIZES = {"small": (1024, 8000), "large": (4096, 32000)}


def dense_dece(z, y, alpha=0.9, eps=0.05):
    import torch

    V = z.shape[1]
    z = z.float()
    t = torch.full_like(z, eps / (V - 1)).scatter_(1, y[:, None], 1 - eps)
    p = torch.clamp(torch.softmax(z, dim=1), 1e-7, 1.0)
    return -(t * torch.log(alpha * p + (1 - alpha) * t)).sum(dim=1).mean()


def worker(impl: str, n: int, v: int, dtype: str, device: str, repeats: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from dece.losses import dece_loss

    torch.set_num_threads(threads)
    fns = {
        "ce_label_smoothing": lambda z, y: F.cross_entropy(z, y, label_smoothing=0.05),
        "dense_dece": dense_dece,
        "dece_loss": lambda z, y: dece_loss(z, y, alpha=0.9, label_smoothing=0.05),
        "dece_loss_triton": lambda z, y: dece_loss(z, y, alpha=0.9, label_smoothing=0.05, backend="triton"),
    }
    fn = fns[impl]
    dt = getattr(torch, DTYPES[dtype])
    g = torch.Generator(device=device).manual_seed(0)
    z = torch.randn(n, v, device=device, generator=g).to(dt).requires_grad_()
    y = torch.randint(0, v, (n,), device=device, generator=g)

    def step():
        z.grad = None
        fn(z, y).backward()
        sync(device)

    peak, median = peak_and_median_time(step, device, repeats)
    out = {"impl": impl, "n": n, "v": v, "dtype": dtype, "time_s": median,
           "peak_x_logits": peak / (n * v * z.element_size())}
    del z, y
    return out


def measure(args, impl: str, n: int, v: int, dtype: str) -> dict:
    if args.device == "cuda":  # one process: the peak counter is reset per measurement
        return worker(impl, n, v, dtype, args.device, args.repeats, args.threads)
    cmd = [sys.executable, __file__, "--worker", impl, str(n), str(v), dtype, "--device", args.device,
           "--threads", str(args.threads), "--repeats", str(args.repeats)]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--dtypes", default="fp32", help=f"comma-separated, of {','.join(DTYPES)}")
    ap.add_argument("--worker", nargs=4, metavar=("IMPL", "N", "V", "DTYPE"))
    args = ap.parse_args()
    if args.worker:
        impl, n, v, dtype = args.worker
        print(json.dumps(worker(impl, int(n), int(v), dtype, args.device, args.repeats, args.threads)))
        return
    impls = IMPLS + (CUDA_IMPLS if args.device == "cuda" else ())
    print(f"device={args.device} threads={args.threads} repeats={args.repeats} (fwd+bwd on the logits)\n")
    print("| N x V | dtype | implementation | time (ms) | time / CE | peak (x logits bytes) |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, v = SIZES[size]
        for dtype in args.dtypes.split(","):
            rows = {impl: measure(args, impl, n, v, dtype) for impl in impls}
            ce = rows["ce_label_smoothing"]["time_s"]
            for impl in impls:
                r = rows[impl]
                print(f"| {n} x {v} | {dtype} | {impl} | {1e3 * r['time_s']:.3f} | {r['time_s'] / ce:.2f}x | "
                      f"{r['peak_x_logits']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
