#!/usr/bin/env bash
# On a CUDA machine, from the repository root or anywhere: the GPU measurements of backend="triton" (issue #19).
#   bash benchmarks/gpu_check.sh [PART ...]     (default: all; logs in $OUT, else build/gpu_check)
# PARTs: tests, bench, step (together: core), suite, demo (together: e2e), all.
#   1. (tests) the loss tests with the Triton kernel compiled for the GPU (without a GPU they run in Triton's interpreter);
#   2. (bench) loss_bench.py: forward+backward on 1024 x 8000 and 4096 x 32000 logits, fp32 and bf16, PyTorch's
#      label-smoothed CE vs dece_loss (torch and triton backends); target: triton <= 1.1x CE's time;
#   3. fused_bench.py: the head + loss at 2048 x 8000 x 512 and 8192 x 32000 x 1024 (fp32, bf16) and at Llama 3's
#      head (H = 4096, V = 128256) with 4k-32k tokens in bf16; target: fused peak <= 6 GB at 32k tokens;
#      then the fused rows at 32k tokens with several chunk sizes;
#   4. (step) one bf16 training step of a 166M-parameter Llama (8 x 1024, V = 32000, 8 x 512 tokens): the model's own CE vs
#      DeCE, unfused and fused, torch and triton backends; target: DeCE's overhead <= 3%.
#   5. (suite) the whole test suite with CUDA visible (without the docs build and the HTML render, which need
#      mkdocs and chromium);
#   6. (demo) `dece demo` (the built-in default) end to end on the GPU.
# Needs torch with CUDA (it ships triton), transformers, and this package importable (src/ on PYTHONPATH, which
# this script adds). Missing Python packages can be put as wheels in .whl/ (installed into .whl/site).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"  # the interpreter with torch (and CUDA): PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
parts=" ${*:-all} "
parts="${parts/ core / tests bench step }"
parts="${parts/ e2e / suite demo }"
parts="${parts/ all / tests bench step suite demo }"
want() { [[ "$parts" == *" $1 "* ]]; }
for p in $parts; do
  case "$p" in tests|bench|step|suite|demo) ;; *) echo "gpu_check.sh: unknown part '$p' (tests, bench, step, suite, demo, core, e2e, all)" >&2; exit 2 ;; esac
done
out="${OUT:-build/gpu_check}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target .whl/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$PWD/.whl/site"
fi
machine=$("$PY" - 2>&1 <<'PY'
import sys
import torch, triton, transformers
if not torch.cuda.is_available():
    sys.exit("no CUDA device visible to torch")
print(f"{torch.cuda.get_device_name()}; torch {torch.__version__} (CUDA {torch.version.cuda}); triton {triton.__version__}; "
      f"transformers {transformers.__version__}")
PY
) || { echo "$machine" | tail -1 >&2; echo "gpu_check.sh: $PY needs a CUDA device, torch, triton and transformers (set PYTHON=...)" >&2; exit 2; }
mkdir -p "$out"  # only once the machine can run the checks
echo "$machine" | tee "$out/env.txt"
status=0
if want tests; then  # the timings below are worth having even if a test fails
  timeout 140 "$PY" -m pytest -q -p no:cacheprovider -n 8 tests/test_losses_triton.py tests/test_losses_fused.py \
    tests/test_losses_hf_fused.py tests/test_losses_dece.py 2>&1 | tee "$out/loss_tests.log" || status=1
fi
if want bench; then
  timeout 50 "$PY" benchmarks/loss_bench.py --device cuda --dtypes fp32,bf16 --repeats 20 2>&1 | tee "$out/loss_bench.md"
  timeout 80 "$PY" benchmarks/fused_bench.py --device cuda --dtypes fp32,bf16 --sizes small,large --repeats 5 \
    2>&1 | tee "$out/fused_bench.md"
  timeout 80 "$PY" benchmarks/fused_bench.py --device cuda --dtypes bf16 --sizes llama3-4k,llama3-8k,llama3-16k,llama3-32k \
    --repeats 3 2>&1 | tee -a "$out/fused_bench.md"
  timeout 50 "$PY" benchmarks/fused_bench.py --device cuda --dtypes bf16 --sizes llama3-32k --repeats 3 \
    --impls unfused_dece_triton,fused_dece,fused_dece_triton --chunks 128,512,1024,2048 2>&1 | tee -a "$out/fused_bench.md"
fi
if want step; then
  timeout 50 "$PY" benchmarks/fused_bench.py --device cuda --no-kernels --step --step-dtype bf16 \
    --step-model 8,1024,32000,8,512 --step-repeats 20 2>&1 | tee "$out/step.md"
fi
if want suite; then
  timeout 200 "$PY" -m pytest -q -p no:cacheprovider -n 16 --dist loadfile --ignore tests/test_docs.py \
    --ignore tests/test_reporting_render.py >"$out/suite.log" 2>&1 || status=1
  tail -40 "$out/suite.log"
fi
if want demo; then
  start=$SECONDS
  timeout 170 "$PY" -m dece demo >"$out/demo.log" 2>&1
  rc=$?
  [[ $rc == 0 ]] || status=1
  echo "dece demo: exit $rc, $((SECONDS - start)) s of wall time" | tee -a "$out/demo.log"
  tail -30 "$out/demo.log"
  cp runs/demo/results.md "$out/demo_results.md" 2>/dev/null || true
fi
exit "$status"
