#!/usr/bin/env bash
# Run the opt-in integration suite (tests/integration) against a real OpenAI-compatible server.
#
# Usage: bash scripts/real-server-test.sh [VENV_DIR] [-- PYTEST_ARGS...]
#
# With INFERENCE_REAL_BASE_URL set (for example http://127.0.0.1:8089/v1), the suite runs
# against that server and nothing is started. Otherwise the script starts a llama-cpp-python
# server with SmolLM2-135M-Instruct through start_real_server.sh (REAL_SERVER_SCRIPT, default
# ../shared/tools/start_real_server.sh beside the repository), whose venv is VENV_DIR (default
# ~/.cache/llama-venv; its first build takes 6-15 minutes), runs the suite, and stops the
# server it started, by its process id.
#
# Not part of scripts/test.sh or CI: it needs a server and takes minutes on a small machine.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

venv_dir=${HOME}/.cache/llama-venv
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  venv_dir=$1
  shift
fi
[ "${1:-}" = "--" ] && shift

python=${PYTHON:-$repo/.venv/bin/python}
if [ ! -x "$python" ]; then
  echo "real-server-test: $python not found; run 'bash scripts/test.sh' once to create .venv" >&2
  exit 2
fi

server_pid=""
stop_server() {
  # The server is not this shell's child (start_real_server.sh detaches it): poll its pid.
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid"
    for _ in $(seq 1 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    echo "real-server-test: stopped the server (pid $server_pid)" >&2
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

if [ -z "${INFERENCE_REAL_BASE_URL:-}" ]; then
  start_script=${REAL_SERVER_SCRIPT:-$repo/../shared/tools/start_real_server.sh}
  if [ ! -f "$start_script" ]; then
    echo "real-server-test: $start_script not found; set INFERENCE_REAL_BASE_URL to a running" \
      "server, or REAL_SERVER_SCRIPT to start_real_server.sh" >&2
    exit 2
  fi
  server_log=$(mktemp -t real-server-XXXXXX.log)
  # llama.cpp's AMX weight repacking faults on some virtual machines that report AMX: the
  # hook in scripts/real_server turns it off in the server process only.
  started=$(
    PYTHONPATH="$repo/scripts/real_server${PYTHONPATH:+:$PYTHONPATH}" SERVER_LOG="$server_log" \
      bash "$start_script" "$venv_dir"
  )
  server_pid=$(sed -n 's/^SERVER_PID=//p' <<<"$started")
  INFERENCE_REAL_BASE_URL=$(sed -n 's/^BASE_URL=//p' <<<"$started")
  INFERENCE_REAL_MODEL=${INFERENCE_REAL_MODEL:-$(sed -n 's/^MODEL_ALIAS=//p' <<<"$started")}
  export INFERENCE_REAL_BASE_URL INFERENCE_REAL_MODEL
  echo "real-server-test: started pid $server_pid at $INFERENCE_REAL_BASE_URL (log: $server_log)" >&2
fi

echo "real-server-test: running tests/integration against $INFERENCE_REAL_BASE_URL" >&2
status=0
"$python" -m pytest -p no:cacheprovider tests/integration "$@" || status=$?
exit "$status"
