#!/usr/bin/env bash
# Set up everything and build the book:  bash tools/setup.sh
#   --install-only   only create/update .venv (used by tools/test.sh)
# Idempotent: a second run re-installs nothing and only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
install_only=0
[ "${1:-}" = "--install-only" ] && install_only=1

py=${PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && { py=$c; break; }; done
fi
"$py" -c 'import sys; assert sys.version_info >= (3, 11), "bert_lit needs Python >= 3.11"'

# 1. The virtual environment, re-installed only when the dependency list changes.
stamp_src=$(cat pyproject.toml tools/constraints.txt tools/setup.sh | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ]; then "$py" -m venv .venv; fi
if [ "$(cat .venv/.bert_lit_stamp 2>/dev/null)" != "$stamp_src" ]; then
  echo "setup: installing into .venv (CPU torch from tools/constraints.txt; log in .venv/setup.log)"
  { .venv/bin/python -m pip install --upgrade pip &&
    .venv/bin/python -m pip install -c tools/constraints.txt torch &&
    .venv/bin/python -m pip install -c tools/constraints.txt -e ".[dev]"; } > .venv/setup.log 2>&1 \
    || { tail -n 30 .venv/setup.log; echo "setup: pip failed (full log: .venv/setup.log)"; exit 1; }
  echo "$stamp_src" > .venv/.bert_lit_stamp
fi

# 2. Chromium for the browser check of the built book (Debian package; skipped where impossible).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; the browser check will be skipped"
  else
    echo "setup: chromium not found and not root; the browser check will be skipped"
  fi
fi

# 3. The real data the notebooks read (served from the cache on a second run).
if .venv/bin/python -c "import bert_lit.data" 2>/dev/null; then
  .venv/bin/python -m bert_lit.data fetch
fi

[ $install_only = 1 ] && exit 0

# 4. The book, from the notebooks' stored outputs.
.venv/bin/jupyter-book build . --warningiserror --quiet
echo "setup: the book is at _build/html/index.html"
