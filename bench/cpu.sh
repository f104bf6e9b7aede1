#!/usr/bin/env bash
# Every CPU benchmark of bench/, side by side with transformers in each script; output to the terminal and to
# bench/cpu-results.txt, which chapter 11 reads (bench/results.py parses it) for its table of measured results.
#
#     bash bench/cpu.sh            # THREADS=1 for one thread (default 2)
#
# The second line says whether this CPU has bfloat16 units (AVX512-BF16 or AMX, from /proc/cpuinfo's flags).
# bfloat16 runs on MiniLM only: a CPU without them (like the 2-core machine this book was first built on) emulates
# it, 6x slower than float32, and bert-base would take a quarter of an hour; on a CPU that has them, add
# `bench/model.py --dtype bf16` for bert-base.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
T=${THREADS:-2}
exec > >(tee bench/cpu-results.txt) 2>&1
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
bf16=$(grep -m1 -o -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ' | sed 's/ $//')
echo "bfloat16: ${bf16:+native ($bf16)}${bf16:-emulated (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo)};" \
     "torch CPU capability $("$PY" -c 'import torch; print(torch.backends.cpu.get_cpu_capability())')"
status=0
step() { echo; echo "=== python ${*:2}"; "$@" || status=1; }
step "$PY" bench/model.py --threads "$T" --repeats 9
step "$PY" bench/model.py --threads "$T" --dtype bf16 --repeats 5 --shapes minilm   # bert-base: see below
step "$PY" bench/unpad.py --threads "$T"
step "$PY" bench/unpad.py --threads "$T" --train --batches 8
step "$PY" bench/int8.py --threads "$T"
step "$PY" bench/bucketing.py --threads "$T"
step "$PY" bench/pretrain.py --threads "$T"
step "$PY" bench/attention.py --threads "$T"
step "$PY" bench/compile.py --threads "$T"
echo; echo "cpu.sh: $([ $status = 0 ] && echo 'all benchmarks ran' || echo 'SOME BENCHMARKS FAILED')"
exit $status
