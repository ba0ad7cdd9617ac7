# Shared helpers for the scripts in this folder. Source it; do not run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
export SAM_CLI_TELEMETRY=0
# moto accepts any credentials; fixed dummies keep the SDK from searching for real ones.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1

MOTO_PID=""

# Prints a free TCP port on 127.0.0.1.
free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Starts moto (with DynamoDB requests serialised, see moto_server.py) on a free port on
# 127.0.0.1 and sets MOTO_URL. Its log goes to $ROOT/.local/moto.log.
start_moto() {
  mkdir -p "$ROOT/.local"
  local port
  port="$(free_port)"
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" 127.0.0.1 "$port" >"$ROOT/.local/moto.log" 2>&1 &
  MOTO_PID=$!
  MOTO_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    if curl -fs -o /dev/null "$MOTO_URL/moto-api/"; then
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
      echo "moto exited at start; see .local/moto.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "moto did not respond on $MOTO_URL within 10 s; see .local/moto.log" >&2
  return 1
}

stop_moto() {
  if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  MOTO_PID=""
}
