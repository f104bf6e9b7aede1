#!/usr/bin/env bash
# Every CPU benchmark of bench/, side by side with transformers in each script; output to the terminal and to
# bench/cpu-results.txt, which chapter 11 reads (bench/results.py parses it) for its table of measured results.
#
#     bash bench/cpu.sh            # THREADS=1 for one thread (default 2)
#
# bfloat16 runs on MiniLM only: a CPU without bfloat16 units (no AVX512-BF16 or AMX, like the 2-core machine this
# book is built on) emulates it, 6x slower than float32, and bert-base would take a quarter of an hour; on a CPU that
# has them, add `bench/model.py --dtype bf16` for bert-base.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
T=${THREADS:-2}
exec > >(tee bench/cpu-results.txt) 2>&1
echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
status=0
step() { echo; echo "=== python ${*:2}"; "$@" || status=1; }
step "$PY" bench/model.py --threads "$T" --repeats 9
step "$PY" bench/model.py --threads "$T" --dtype bf16 --repeats 5 --shapes minilm   # bert-base: see below
step "$PY" bench/unpad.py --threads "$T"
step "$PY" bench/bucketing.py --threads "$T"
step "$PY" bench/pretrain.py --threads "$T"
step "$PY" bench/attention.py --threads "$T"
step "$PY" bench/compile.py --threads "$T"
echo; echo "cpu.sh: $([ $status = 0 ] && echo 'all benchmarks ran' || echo 'SOME BENCHMARKS FAILED')"
exit $status
