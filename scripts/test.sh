#!/usr/bin/env bash
# Install everything the tests need into ./.venv (fresh machine included) and run them:
# the test suite, mypy --strict, ruff, and the benchmark harness smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,web]'

# The browser test drives the system Chromium (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "chromium is missing: run 'sudo apt-get install -y chromium' (the web page test needs it)" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict inference
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
