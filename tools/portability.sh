#!/usr/bin/env bash
# Check that stored outputs and tolerances do not depend on the CPU's instruction set:
#   bash tools/portability.sh [default avx2 avx512]      (default: all three)
# For each kernel set it re-runs every notebook under nbval and the numerical tests of tests/ (parity with
# transformers, fast paths against slow ones) with PyTorch's CPU kernels forced to that set
# (ATEN_CPU_CAPABILITY) and oneDNN capped to the matching ISA (ONEDNN_MAX_CPU_ISA). A kernel set the CPU lacks
# cannot be checked on this machine (PyTorch would die on the first instruction the CPU lacks): the script says so,
# and it does not repeat a set that PyTorch runs as one already checked.
set -uo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh --install-only || { echo "portability: set-up failed"; exit 1; }
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0
caps=("$@"); [ ${#caps[@]} -gt 0 ] || caps=(default avx2 avx512)
numeric_tests=(tests/test_model_units.py tests/test_pretrained.py tests/test_pretraining.py tests/test_finetuning.py
               tests/test_qa.py tests/test_training.py tests/test_speed.py tests/test_devices.py)
declare -A isa=([default]=SSE41 [avx2]=AVX2 [avx512]=ALL)
declare -A done_as=()
failed=(); summary=()
for cap in "${caps[@]}"; do
  [ -n "${isa[$cap]:-}" ] || { echo "portability: unknown kernel set '$cap' (use default, avx2 or avx512)"; exit 2; }
  export ATEN_CPU_CAPABILITY=$cap ONEDNN_MAX_CPU_ISA=${isa[$cap]}
  # torch.compile's cache does not key on the kernel set: code generated for one fails to build under another
  export TORCHINDUCTOR_CACHE_DIR; TORCHINDUCTOR_CACHE_DIR=$(mktemp -d -t "inductor-$cap-XXXX")
  # PyTorch takes the requested set on trust: on a CPU without its instructions the first vector op dies (SIGILL)
  if ! python -c "import torch; torch.softmax(torch.randn(64, 4096), -1).exp().sum()" 2>/dev/null; then
    echo "=== $cap: this CPU cannot run PyTorch's $cap kernels (no such instructions): not checked here"
    summary+=("$(printf '%-8s not available on this CPU (%s); check on a machine that has it' "$cap" \
                "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs)")")
    continue
  fi
  ran=$(python -c "import torch; print(torch.backends.cpu.get_cpu_capability())")
  if [ -n "${done_as[$ran]:-}" ]; then
    echo "=== $cap: this CPU runs it as $ran, already checked as '${done_as[$ran]}'"
    summary+=("$(printf '%-8s runs as %-7s (same as %s, not repeated)' "$cap" "$ran" "${done_as[$ran]}")")
    continue
  fi
  done_as[$ran]=$cap
  echo "=== $cap: ATEN_CPU_CAPABILITY=$cap (PyTorch runs $ran), ONEDNN_MAX_CPU_ISA=${isa[$cap]}"
  s=$(date +%s); r=ok
  python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tools/nbval_sanitize.cfg nbs/ -q || r=FAILED
  python -m pytest "${numeric_tests[@]}" -q || r=FAILED
  rm -rf "$TORCHINDUCTOR_CACHE_DIR"
  [ $r = ok ] || failed+=("$cap")
  summary+=("$(printf '%-8s runs as %-7s %-7s %5ss' "$cap" "$ran" "$r" "$(( $(date +%s) - s ))")")
done
echo "=== portability summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED under: ${failed[*]}"; exit 1; fi
echo "all kernel sets passed"
