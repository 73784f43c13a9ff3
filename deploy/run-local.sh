#!/usr/bin/env bash
# Start Rosetta on its default config, with the local model server it routes the `local` model to.
#
# Builds llama-server once (cached under ~/.cache/rosetta), starts it on 127.0.0.1:${ROSETTA_LOCAL_PORT:-8081}
# unless one already answers there, then runs the gateway in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${ROSETTA_LOCAL_PORT:-8081}"
export ROSETTA_LOCAL_BASE_URL="${ROSETTA_LOCAL_BASE_URL:-http://127.0.0.1:$PORT/v1}"
LOG="${TMPDIR:-/tmp}/rosetta-llama-server.log"

if ! curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
  read -r BIN MODEL TEMPLATE < <(deploy/local-model.sh paths)
  echo "[run] starting llama-server on 127.0.0.1:$PORT (log: $LOG)"
  "$BIN" -m "$MODEL" --host 127.0.0.1 --port "$PORT" -c 4096 -np 2 -t 2 --jinja --no-webui \
    --chat-template-file "$TEMPLATE" >"$LOG" 2>&1 &
  LLAMA_PID=$!
  trap 'kill "$LLAMA_PID" 2>/dev/null || true' EXIT INT TERM
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
    kill -0 "$LLAMA_PID" 2>/dev/null || { echo "[run] llama-server exited; see $LOG" >&2; exit 1; }
    sleep 0.5
  done
  echo "[run] llama-server ready"
fi

echo "[run] Rosetta on http://${ROSETTA_HOST:-127.0.0.1}:${ROSETTA_PORT:-8080} (API key: ${ROSETTA_API_KEY:-rosetta-dev-key})"
.venv/bin/python -m gateway --config "${ROSETTA_CONFIG:-config/default.yaml}"
