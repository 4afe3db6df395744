"""The measurement both benchmarks share: peak memory of one call and its median time.

Peak = growth of the process's max RSS (CPU) or of ``torch.cuda.max_memory_allocated`` (CUDA) over
what was allocated before the first call, in bytes. Run each measurement in its own process.
"""

from __future__ import annotations

import resource
import statistics
import time
from typing import Callable

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def peak_and_median_time(step: Callable[[], None], device: str, repeats: int) -> tuple[int, float]:
    """Calls ``step`` once (warm-up and peak measurement), then ``repeats`` times for the median time;
    ``step`` must synchronise the device itself. On CUDA, also a second warm-up call (the first compiles
    kernels and autotunes) before the timed ones."""
    import torch

    sync(device)
    if device == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) - base
    if device == "cuda":
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return peak, statistics.median(times)
