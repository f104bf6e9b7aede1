#!/usr/bin/env bash
# Run the whole suite:  bash tools/test.sh
# Sets up .venv if needed (idempotent), then runs every check, timing each; exits non-zero if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
bash tools/setup.sh --install-only || { echo "test: set-up failed"; exit 1; }
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0
failed=()
summary=()
check() {  # check NAME COMMAND...
  local name=$1; shift
  local s; s=$(date +%s)
  echo "=== $name: $*"
  if "$@"; then r=ok; else r=FAILED; failed+=("$name"); fi
  summary+=("$(printf '%-22s %-7s %5ss' "$name" "$r" "$(( $(date +%s) - s ))")")
}
check "export in sync"   python tools/check_export.py
check "notebook hygiene" python tools/check_notebooks.py
check "book build"       jupyter-book build . --warningiserror --quiet
# two worker processes (pytest-xdist), each taking whole files: a notebook's cells run in order in one kernel
workers=(-n "${BERT_LIT_TEST_WORKERS:-2}" --dist loadfile)
check "nbval (notebooks)" python -m pytest --nbval --nbval-current-env \
                           --nbval-sanitize-with tools/nbval_sanitize.cfg nbs/ -q "${workers[@]}"
check "pytest tests/"    python -m pytest tests/ -q "${workers[@]}"
echo "=== summary (total $(( $(date +%s) - t0 ))s)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
echo "all checks passed"
