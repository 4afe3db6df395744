"""The fused head + DeCE loss against the unfused path and PyTorch's fused CE; and DeCE's overhead in a
full training step. Run by hand:

    python benchmarks/fused_bench.py [--device cuda] [--sizes small,large] [--dtypes fp32,bf16] [--threads 1]

Part 1 (loss kernels): forward+backward of the loss on ``hidden @ W.T`` with gradients for hidden and W.
On CPU each (implementation, size, dtype) runs in its own subprocess (``--worker``) so peak memory is not
polluted by the others; on CUDA they share one process (the peak counter is reset per measurement).
Peak = growth of the process's max RSS (CPU) or of ``torch.cuda.max_memory_allocated`` (CUDA) over the
inputs (hidden and W); it includes the hidden/weight gradients every implementation produces (CPU workers
run with MALLOC_MMAP_THRESHOLD_=131072 so that glibc returns freed large buffers and RSS tracks live memory).
Sizes: ``small`` 2048 x 8000 x 512, ``large`` 8192 x 32000 x 1024 (N tokens x V x H), and Llama 3's head
(H = 4096, V = 128256) at 4k-32k tokens: ``llama3-4k``, ``llama3-8k``, ``llama3-16k``, ``llama3-32k``.
Time = median of ``--repeats`` runs after a warm-up. Implementations:

* ``unfused_dece``: ``dece_loss(hidden @ W.T, y)`` (the reference the target ratios refer to)
* ``fused_dece``: ``fused_linear_dece(hidden, W, y)``
* ``unfused_ce``: ``F.cross_entropy(hidden @ W.T, y, label_smoothing=0.05)``
* ``torch_fused_ce``: ``F.linear_cross_entropy(hidden, W, y, options=LinearCrossEntropyOptions())``, plain CE
  (torch >= 2.13; its chunked path falls back to the unfused reference for ``label_smoothing > 0``)
* ``fused_ce``: our engine with label-smoothed CE (``FusedLinearLoss(get_loss("label_smoothing"))``)
* ``unfused_dece_triton``, ``fused_dece_triton``: the first two with ``backend="triton"`` (CUDA only;
  in the default list when ``--device cuda``)

Part 2 (``--step``): one full training step (forward, loss, backward, AdamW step) of a small Llama,
CE (the model's own loss) vs DeCE (``dece_loss`` on its logits) vs fused DeCE (``fused_model_loss``),
and on CUDA both DeCE variants again with ``backend="triton"``, in one process, the variants interleaved in
rotating order over ``--step-repeats`` rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from measure import DTYPES, peak_and_median_time, sync

IMPLS = ("unfused_dece", "fused_dece", "unfused_ce", "torch_fused_ce", "fused_ce")
TRITON_IMPLS = ("unfused_dece_triton", "fused_dece_triton")
SIZES = {"small": (2048, 8000, 512), "large": (8192, 32000, 1024),  # N tokens, V vocab, H hidden
         **{f"llama3-{k}k": (1024 * k, 128256, 4096) for k in (4, 8, 16, 32)}}


def worker(impl: str, n: int, v: int, h: int, dtype: str, device: str, repeats: int, threads: int,
           chunk: int | None = None) -> dict:
    import torch
    import torch.nn.functional as F

    from dece.losses import FusedLinearLoss, dece_loss, fused_linear_dece, get_loss

    torch.set_num_threads(threads)
    dt = getattr(torch, DTYPES[dtype])
    smooth_ce = FusedLinearLoss(get_loss("label_smoothing", label_smoothing=0.05, chunk_size=chunk))
    fns = {
        "unfused_dece": lambda x, w, y: dece_loss(x @ w.T, y, alpha=0.9, label_smoothing=0.05),
        "fused_dece": lambda x, w, y: fused_linear_dece(x, w, y, alpha=0.9, label_smoothing=0.05, chunk_size=chunk),
        "unfused_ce": lambda x, w, y: F.cross_entropy(x @ w.T, y, label_smoothing=0.05),
        "torch_fused_ce": lambda x, w, y: F.linear_cross_entropy(  # its chunked path needs label_smoothing=0
            x, w, y, options=torch.nn.LinearCrossEntropyOptions()
        ),
        "fused_ce": lambda x, w, y: smooth_ce(x, w, y),
        "unfused_dece_triton": lambda x, w, y: dece_loss(x @ w.T, y, alpha=0.9, label_smoothing=0.05, backend="triton"),
        "fused_dece_triton": lambda x, w, y: fused_linear_dece(
            x, w, y, alpha=0.9, label_smoothing=0.05, chunk_size=chunk, backend="triton"
        ),
    }
    fn = fns[impl]
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, h, device=device, generator=g).to(dt).requires_grad_()
    w = (torch.randn(v, h, device=device, generator=g) / h**0.5).to(dt).requires_grad_()
    y = torch.randint(0, v, (n,), device=device, generator=g)
    y[::10] = -100  # some ignored positions, as padding gives

    def step():
        x.grad = w.grad = None
        fn(x, w, y).backward()
        sync(device)

    peak, median = peak_and_median_time(step, device, repeats)
    logits_bytes = n * v * torch.tensor([], dtype=dt).element_size()
    del x, w, y
    return {"impl": impl, "n": n, "v": v, "h": h, "dtype": dtype, "time_s": median,
            "peak_mib": peak / 2**20, "peak_x_logits": peak / logits_bytes}


def run_worker(args, impl, size, dtype) -> dict:
    n, v, h = SIZES[size]
    if args.device == "cuda":  # one process: the peak counter is reset per measurement
        import torch

        try:
            return worker(impl, n, v, h, dtype, args.device, args.repeats, args.threads, args.chunk)
        except Exception as e:  # noqa: BLE001 (a row that cannot run says why and the table goes on)
            torch.cuda.empty_cache()
            return {"impl": impl, "n": n, "v": v, "h": h, "dtype": dtype, "error": f"{type(e).__name__}: {e}"}
    cmd = [sys.executable, __file__, "--worker", impl, str(n), str(v), str(h), dtype, "--device", args.device,
           "--repeats", str(args.repeats), "--threads", str(args.threads)]
    if args.chunk:
        cmd += ["--chunk", str(args.chunk)]
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}  # glibc: large buffers mmapped and returned on free
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        return {"impl": impl, "n": n, "v": v, "h": h, "dtype": dtype, "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _chunks(args, impl: str) -> list[int | None]:
    """The chunk sizes to run ``impl`` with: every one of ``--chunks`` for a fused row, else ``--chunk``."""
    if args.chunks and impl in ("fused_dece", "fused_ce", "fused_dece_triton"):
        return [int(c) for c in args.chunks.split(",")]
    return [args.chunk]


def kernel_table(args) -> None:
    print(f"## Loss kernels: forward+backward, device={args.device}, threads={args.threads}, median of {args.repeats}\n")
    print("| N | V | H | dtype | implementation | time (s) | peak (MiB) | peak / logits | time vs unfused DeCE | peak vs unfused DeCE |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in args.sizes.split(","):
        for dtype in args.dtypes.split(","):
            rows = []
            for impl in args.impls.split(","):
                for chunk in _chunks(args, impl):
                    row = run_worker(argparse.Namespace(**{**vars(args), "chunk": chunk}), impl, size, dtype)
                    rows.append({**row, "impl": f"{impl}@{chunk}" if args.chunks and chunk else impl})
            ref = next((r for r in rows if r["impl"] == "unfused_dece" and "error" not in r), None)
            for r in rows:
                head = f"| {r['n']} | {r['v']} | {r['h']} | {r['dtype']} | {r['impl']} |"
                if "error" in r:
                    print(f"{head} error: {r['error'][:80]} | | | | |")
                    continue
                tr = f"{r['time_s'] / ref['time_s']:.2f}x" if ref else "-"
                pr = f"{r['peak_mib'] / ref['peak_mib']:.3f}x" if ref and ref["peak_mib"] > 0 else "-"
                print(f"{head} {r['time_s']:.3f} | {r['peak_mib']:.0f} | {r['peak_x_logits']:.2f} | {tr} | {pr} |")
            sys.stdout.flush()


def step_overhead(args) -> None:
    import torch
    import torch.nn.functional as F
    import transformers as tf

    from dece.losses import dece_loss, get_loss
    from dece.losses.hf_fused import fused_model_loss

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    layers, width, vocab, batch, seq = (int(s) for s in args.step_model.split(","))
    cfg = tf.LlamaConfig(vocab_size=vocab, hidden_size=width, intermediate_size=width * 8 // 3, num_hidden_layers=layers,
                         num_attention_heads=max(1, width // 64), num_key_value_heads=max(1, width // 64),
                         max_position_embeddings=seq, tie_word_embeddings=False)
    model = tf.LlamaForCausalLM(cfg).to(args.device, getattr(torch, DTYPES[args.step_dtype])).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, vocab, (batch, seq), device=args.device)
    labels = ids.clone()
    labels[:, : seq // 4] = -100  # a prompt, as in the project's decoder-only data
    batch_in = {"input_ids": ids}
    shifted = F.pad(labels[:, 1:], (0, 1), value=-100)
    backends = ["torch"] + (["triton"] if args.device == "cuda" else [])
    suffix = {"torch": "", "triton": "_triton"}
    fused = {b: get_loss("dece", alpha_base=0.985, label_smoothing=0.05, backend=b) for b in backends}
    losses = {"ce": lambda: model(**batch_in, labels=labels).loss}
    for b in backends:
        losses["dece" + suffix[b]] = lambda b=b: dece_loss(
            model(**batch_in).logits, shifted, epoch=1, alpha_base=0.985, backend=b
        )
        losses["fused_dece" + suffix[b]] = lambda b=b: fused_model_loss(model, batch_in, labels, fused[b], epoch=1)

    kinds = list(losses)
    times = {k: [] for k in kinds}
    for r in range(args.step_repeats + 1):
        order = kinds[r % len(kinds):] + kinds[: r % len(kinds)]
        for k in order:
            sync(args.device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            losses[k]().backward()
            opt.step()
            sync(args.device)
            if r > 0:  # round 0 is the warm-up
                times[k].append(time.perf_counter() - t0)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"\n## Training step: Llama {layers}x{width}, V={vocab}, {n_params / 1e6:.1f}M params, batch {batch}x{seq}, "
          f"AdamW, {args.step_dtype}, device={args.device}, threads={args.threads}, median of {args.step_repeats} interleaved rounds\n")
    print("| loss | step time (s) | vs CE |")
    print("|---|---|---|")
    ce = statistics.median(times["ce"])
    for k in kinds:
        t = statistics.median(times[k])
        print(f"| {k} | {t:.4f} | {100 * (t / ce - 1):+.1f}% |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--dtypes", default="fp32")
    ap.add_argument("--impls", default=None, help=f"default: {','.join(IMPLS)} (+ {','.join(TRITON_IMPLS)} on cuda)")
    ap.add_argument("--chunk", type=int, default=None, help="rows per chunk of the fused losses (default: theirs)")
    ap.add_argument("--chunks", default=None,
                    help="several chunk sizes for the fused rows, e.g. 128,512,2048 (each row's name gets @chunk)")
    ap.add_argument("--no-kernels", action="store_true", help="skip part 1")
    ap.add_argument("--step", action="store_true", help="also run part 2 (training-step overhead)")
    ap.add_argument("--step-model", default="4,256,32000,8,128", help="layers,width,vocab,batch,seq")
    ap.add_argument("--step-dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--step-repeats", type=int, default=5)
    ap.add_argument("--worker", nargs=5, metavar=("IMPL", "N", "V", "H", "DTYPE"))
    args = ap.parse_args()
    if args.worker:
        impl, n, v, h, dtype = args.worker
        print(json.dumps(worker(impl, int(n), int(v), int(h), dtype, args.device, args.repeats, args.threads, args.chunk)))
        return
    if args.impls is None:
        args.impls = ",".join(IMPLS + (TRITON_IMPLS if args.device == "cuda" else ()))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not args.no_kernels:
        kernel_table(args)
    if args.step:
        step_overhead(args)


if __name__ == "__main__":
    main()
