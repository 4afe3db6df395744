#!/usr/bin/env bash
# On a CUDA machine, from the repository root or anywhere: what backend="triton" still needs measured (issue #7).
#   1. the loss tests with the Triton kernel compiled for the GPU (without a GPU they run in Triton's interpreter);
#   2. forward+backward of the loss kernels at N x V x H = 2048 x 8000 x 512 and 8192 x 32000 x 1024, fp32 and bf16,
#      torch and triton backends, unfused and fused (peak and time ratios against unfused dece_loss);
#   3. one bf16 training step of a 166M-parameter Llama (8 x 1024, V = 32000, 8 x 512 tokens): CE vs DeCE
#      (target: DeCE's overhead <= 3%).
# Needs torch with CUDA (it ships triton), transformers, and this package importable (pip install -e . or src/ on
# PYTHONPATH, which this script adds).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())"
tests=(tests/test_losses_triton.py tests/test_losses_fused.py tests/test_losses_hf_fused.py)
python -c "import hypothesis" 2>/dev/null && tests+=(tests/test_losses_dece.py)  # its property tests need hypothesis
status=0
python -m pytest -q -p no:cacheprovider "${tests[@]}" || status=$?  # the timings below are worth having anyway
python benchmarks/fused_bench.py --device cuda --dtypes fp32,bf16
python benchmarks/fused_bench.py --device cuda --no-kernels --step --step-dtype bf16 --step-model 8,1024,32000,8,512
exit "$status"
