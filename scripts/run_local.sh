#!/usr/bin/env bash
# Run the whole service on this machine without Docker: the local model server (a stand-in
# for TF Serving) in the background, then the gateway under gunicorn in the foreground.
# Ctrl-C stops both. Called by `make run`; every setting can be overridden from the env:
#   MODEL_REPO=model_repo VENV=.venv HOST=127.0.0.1 GATEWAY_PORT=8000 GRPC_PORT=8500
#   REST_PORT=8501 GATEWAY_BACKEND=grpc|rest READY_TIMEOUT=300 (seconds)
set -euo pipefail

MODEL_REPO=${MODEL_REPO:-model_repo}
VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
GATEWAY_PORT=${GATEWAY_PORT:-8000}
GRPC_PORT=${GRPC_PORT:-8500}
REST_PORT=${REST_PORT:-8501}
READY_TIMEOUT=${READY_TIMEOUT:-300}
PYTHON="$VENV/bin/python"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ ! -f "$MODEL_REPO/models.config" ]; then
    echo "no $MODEL_REPO/models.config: train models first (make models)" >&2
    exit 1
fi
REPO=$(cd "$MODEL_REPO" && pwd)
MODELS=$(grep -o 'name: *"[^"]*"' "$REPO/models.config" | sed 's/.*"\(.*\)"/\1/' | paste -sd, -)

server_pid=""
gateway_pid=""
stop_all() {
    # Children first get TERM (graceful: in-flight requests finish), then we reap them.
    for pid in $gateway_pid $server_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $gateway_pid $server_pid; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

echo "starting the model server: gRPC $HOST:$GRPC_PORT, REST $HOST:$REST_PORT, models $MODELS"
"$PYTHON" -m serving.modelserver \
    --port "$GRPC_PORT" --rest_api_port "$REST_PORT" \
    --model_config_file "$REPO/models.config" \
    --enable_batching --batching_parameters_file "$REPO/batching_parameters.txt" \
    --monitoring_config_file "$REPO/monitoring.config" &
server_pid=$!
"$PYTHON" -m scripts.wait_for --model-server "http://$HOST:$REST_PORT" --models "$MODELS" \
    --pid "$server_pid" --timeout "$READY_TIMEOUT"

export GATEWAY_BACKEND=${GATEWAY_BACKEND:-grpc}
export GATEWAY_GRPC_TARGET="$HOST:$GRPC_PORT"
export GATEWAY_REST_URL="http://$HOST:$REST_PORT"
export GATEWAY_MODEL_REPO="$REPO"
export GATEWAY_PORT
echo "starting the gateway on http://$HOST:$GATEWAY_PORT (backend: $GATEWAY_BACKEND)"
"$VENV/bin/gunicorn" -c serving/gateway/gunicorn_conf.py --bind "$HOST:$GATEWAY_PORT" \
    "serving.gateway.app:create_app()" &
gateway_pid=$!
"$PYTHON" -m scripts.wait_for --url "http://$HOST:$GATEWAY_PORT/readyz" \
    --pid "$gateway_pid" --timeout "$READY_TIMEOUT"

URL="http://$HOST:$GATEWAY_PORT"
cat <<CURLS

Ready. Try (Ctrl-C stops the gateway and the model server):

curl -s $URL/v1/qa -H 'Content-Type: application/json' \\
  -d '{"article": "Mary moved to the bathroom. John went to the hallway.", "question": "Where is Mary?", "top_k": 3}'
curl -s $URL/v1/profile -H 'Content-Type: application/json' \\
  -d '{"posts": ["Finally finished my thesis draft today, time to celebrate with friends.", "Work was long, the new project at the office keeps me busy."]}'
curl -s $URL/v1/similarity -H 'Content-Type: application/json' \\
  -d '{"pairs": [{"text_a": "A plane is taking off.", "text_b": "An air plane is taking off."}]}'
curl -s $URL/v1/qa -H 'Content-Type: application/json' \\
  -d '{"instances": [{"article": "Mary went to the garden.", "question": "Where is Mary?"}, {"article": "John moved to the office.", "question": "Where is John?"}]}'
curl -s $URL/v1/models
curl -s $URL/readyz
curl -s $URL/metrics | head
open $URL/docs for the interactive API documentation
load test it: make loadtest GATEWAY_PORT=$GATEWAY_PORT (or python -m loadtests.run --host $URL --grpc-target $HOST:$GRPC_PORT --model-repo $REPO)
CURLS

wait "$gateway_pid"
