#!/usr/bin/env bash
# Regenerate stored outputs deterministically: bash tools/regen.sh [nbs/NN_name.ipynb ...]
# Cleans each notebook, executes it top to bottom with timing metadata off, then re-exports the package.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" PYTHONHASHSEED=0
nbs=("$@"); [ ${#nbs[@]} -gt 0 ] || nbs=(nbs/*.ipynb)
nbdev_export   # notebooks import the modules of earlier chapters: make them current first
for nb in "${nbs[@]}"; do
  nbdev_clean --fname "$nb"
  jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.record_timing=False \
    --ExecutePreprocessor.timeout=1800 "$nb"
done
python tools/check_notebooks.py
nbdev_export
