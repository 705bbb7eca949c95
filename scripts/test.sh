#!/usr/bin/env bash
# Install everything the tests need into ./.venv (fresh machine included) and run them:
# the test suite, mypy --strict, ruff, and the benchmark harness smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev,web,batch,ray]'

# The browser test drives the system Chromium (no browser download).
# Where it cannot be installed (not root, or no apt-get) the page test is skipped with the
# reason, except in CI (CI=true), where it must run.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "chromium is missing: the web page test will be skipped (on Debian: 'sudo apt-get install -y chromium')" >&2
  fi
fi

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict inference
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
