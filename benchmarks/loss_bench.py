"""Forward+backward time and peak memory of the DeCE loss against the dense formulation and
PyTorch's cross-entropy. Run by hand: ``python benchmarks/loss_bench.py [--device cuda] [--threads 1]``.

Each (implementation, size) runs in its own subprocess so peak memory is not polluted by the others.
Peak = growth of the process's max RSS (CPU) or of ``torch.cuda.max_memory_allocated`` (CUDA) over the
inputs, printed as a multiple of the logits' bytes. Time = median of ``--repeats`` runs after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from measure import peak_and_median_time, sync

IMPLS = ("ce_label_smoothing", "dense_dece", "dece_loss")
SIZES = {"small": (1024, 8000), "large": (4096, 32000)}


def dense_dece(z, y, alpha=0.9, eps=0.05):
    import torch

    V = z.shape[1]
    t = torch.full_like(z, eps / (V - 1)).scatter_(1, y[:, None], 1 - eps)
    p = torch.clamp(torch.softmax(z, dim=1), 1e-7, 1.0)
    return -(t * torch.log(alpha * p + (1 - alpha) * t)).sum(dim=1).mean()


def worker(impl: str, n: int, v: int, device: str, repeats: int, threads: int) -> dict:
    import torch
    import torch.nn.functional as F

    from dece.losses import dece_loss

    torch.set_num_threads(threads)
    fns = {
        "ce_label_smoothing": lambda z, y: F.cross_entropy(z, y, label_smoothing=0.05),
        "dense_dece": dense_dece,
        "dece_loss": lambda z, y: dece_loss(z, y, alpha=0.9, label_smoothing=0.05),
    }
    fn = fns[impl]
    g = torch.Generator(device=device).manual_seed(0)
    z = torch.randn(n, v, device=device, generator=g).requires_grad_()
    y = torch.randint(0, v, (n,), device=device, generator=g)

    def step():
        z.grad = None
        fn(z, y).backward()
        sync(device)

    peak, median = peak_and_median_time(step, device, repeats)
    return {"impl": impl, "n": n, "v": v, "time_s": median, "peak_x_logits": peak / (n * v * 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--worker", nargs=3, metavar=("IMPL", "N", "V"))
    args = ap.parse_args()
    if args.worker:
        impl, n, v = args.worker
        print(json.dumps(worker(impl, int(n), int(v), args.device, args.repeats, args.threads)))
        return
    print(f"device={args.device} threads={args.threads} repeats={args.repeats} (fp32 logits, fwd+bwd)\n")
    print("| N x V | implementation | time (s) | time / CE | peak (x logits bytes) |")
    print("|---|---|---|---|---|")
    for size in args.sizes.split(","):
        n, v = SIZES[size]
        rows = {}
        for impl in IMPLS:
            cmd = [sys.executable, __file__, "--worker", impl, str(n), str(v), "--device", args.device,
                   "--threads", str(args.threads), "--repeats", str(args.repeats)]
            rows[impl] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        ce = rows["ce_label_smoothing"]["time_s"]
        for impl in IMPLS:
            r = rows[impl]
            print(f"| {n} x {v} | {impl} | {r['time_s']:.3f} | {r['time_s'] / ce:.2f}x | {r['peak_x_logits']:.2f}x |")


if __name__ == "__main__":
    main()
