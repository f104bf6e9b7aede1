#!/usr/bin/env bash
# The GPU check of chapter 9, one command on a machine with one CUDA GPU (after the README's set-up; installs nothing):
#
#     bash bench/gpu.sh            # PEAK_TFLOPS=... to give the GPU's dense bf16 peak if it is not in the table below
#
# 1. equality: tests/test_devices.py (the model, its default packed and its padded path, training steps, GPU vs CPU);
# 2. speed, side by side with transformers in each script, in bfloat16 (and float32 for the fixed shapes):
#    fixed shapes (bert-base, MiniLM, 32 x 128) with tokens/s and model FLOP utilisation against the GPU's peak,
#    real sentence batches (default packed path vs padded vs transformers), attention alone, a bert-base pretraining step, torch.compile.
# Output goes to the terminal and to bench/gpu-results.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
exec > >(tee bench/gpu-results.txt) 2>&1
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu.sh: torch sees no CUDA GPU (torch.cuda.is_available() is False): install a CUDA build of torch" \
       "on a machine with an NVIDIA GPU, or run the CPU benchmarks in bench/ instead"
  exit 2
fi
peak=${PEAK_TFLOPS:-$("$PY" - <<'PYEOF'
import torch
name = torch.cuda.get_device_name(0)
# dense bf16 tensor-core peaks, TFLOP/s (vendor data sheets; SXM parts)
table = {"H200": 989, "H100 PCIe": 756, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10G": 70, "A10": 125,
         "RTX 4090": 165, "RTX 3090": 71}
print(next((v for k, v in table.items() if k in name), ""))
PYEOF
)}
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, '
          f'compute capability {p.major}.{p.minor}; torch {torch.__version__}, CUDA {torch.version.cuda}')"
echo "dense bf16 peak used for MFU: ${peak:-unknown (set PEAK_TFLOPS)} TFLOP/s"
status=0
step() { echo; echo "=== python ${*:2}"; "$@" || status=1; }
step "$PY" -m pytest -q -rs tests/test_devices.py
step "$PY" bench/model.py --device cuda --dtype bf16 --repeats 20 ${peak:+--peak-tflops $peak}
step "$PY" bench/model.py --device cuda --dtype fp32 --repeats 20
step "$PY" bench/unpad.py --device cuda --dtype bf16 --batches 64 --repeats 5
step "$PY" bench/attention.py --device cuda --dtype bf16
step "$PY" bench/pretrain.py --device cuda --precision bf16 --hidden-size 768 --layers 12 --heads 12 \
     --vocab-size 30522 --steps 10 ${peak:+--peak-tflops $peak}
step "$PY" bench/compile.py --device cuda --dtype bf16 --repeats 20
echo; echo "gpu.sh: $([ $status = 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED') (bench/gpu-results.txt)"
exit $status
