"""Test-wide settings: offline, single-threaded torch (the CI machine has 2 cores)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

torch.set_num_threads(1)
if not torch.cuda.is_available():
    # Triton's jit reads this when it decorates a function (its own tl.* helpers at the first import of
    # triton.language, by whichever library comes first): without a GPU, backend="triton" is tested
    # through Triton's interpreter, so it must be set before anything imports triton.
    os.environ.setdefault("TRITON_INTERPRET", "1")
