#!/usr/bin/env bash
# Run the whole service on this machine without Docker: the local model server (a stand-in
# for TF Serving) in the background, then the gateway under gunicorn in the foreground.
# Ctrl-C stops both. Called by `make run`; every setting can be overridden from the env:
#   MODEL_REPO=model_repo VENV=.venv HOST=127.0.0.1 GATEWAY_PORT=8000 GRPC_PORT=8500
#   REST_PORT=8501 GATEWAY_BACKEND=grpc|rest READY_TIMEOUT=300 STOP_TIMEOUT=30 (seconds)
#   INTRA_OP_THREADS=1 (TensorFlow's intra-op threads per batch thread; see below)
set -euo pipefail
# Job control puts each background server in its own process group: Ctrl-C reaches only this
# script, whose trap stops both servers with one TERM each (a second signal would only race
# with their graceful shutdown).
set -m

MODEL_REPO=${MODEL_REPO:-model_repo}
VENV=${VENV:-.venv}
HOST=${HOST:-127.0.0.1}
GATEWAY_PORT=${GATEWAY_PORT:-8000}
GRPC_PORT=${GRPC_PORT:-8500}
REST_PORT=${REST_PORT:-8501}
READY_TIMEOUT=${READY_TIMEOUT:-300}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}
# batch threads x intra-op threads = cores: batching_parameters.txt runs num_batch_threads =
# cores batches at once, so each batch's ops run on one thread (no spinning hand-offs for
# this project's small matrices). Measured on 2 cores (loadtests/README.md, round 6): the
# similarity call 18 -> 14 ms of CPU at 1 client, the mix at 8 clients 1.03-1.07x -> 1.28x
# the in-process baseline. With more cores than num_batch_threads, raise it to their ratio.
INTRA_OP_THREADS=${INTRA_OP_THREADS:-1}
# --enable_serialization_as_tensor_content (TF Serving's flag, also in deploy/): Predict answers
# carry each output as little-endian bytes (tensor_content), which the gateway reads with one
# np.frombuffer, instead of typed value lists (float_val) it converts number by number
# (loadtests/README.md, round 17).
PYTHON="$VENV/bin/python"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

# A model's or a version's folder given as the repo is named as such (serving.contract's rule),
# not answered "train models first".
layout=$("$PYTHON" -c 'import sys
from pathlib import Path
from serving.contract import repo_layout_problem
print(repo_layout_problem(Path(sys.argv[1])) or "")' "$MODEL_REPO")
if [ -n "$layout" ]; then
    echo "MODEL_REPO: $layout" >&2
    exit 1
fi
if [ ! -f "$MODEL_REPO/models.config" ]; then
    echo "no $MODEL_REPO/models.config: train models first (make models)" >&2
    exit 1
fi
REPO=$(cd "$MODEL_REPO" && pwd)
# The one models.config parser (comments, both quote styles) rather than a grep of our own.
MODELS=$("$PYTHON" -c 'import sys
from pathlib import Path
from serving.contract import parse_model_names
print(",".join(parse_model_names(Path(sys.argv[1]).read_text())))' "$REPO/models.config")

# Another `make run` (or any server) on these ports would answer the readiness checks below
# for this one, which then printed "Ready" while its own servers failed to bind: refuse first.
"$PYTHON" -m scripts.free_ports --host "$HOST" "$GATEWAY_PORT" "$GRPC_PORT" "$REST_PORT"

server_pid=""
gateway_pid=""
metrics_dir=""
alive() {
    # A dead child stays a zombie until reaped: it still answers kill -0.
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}
stop_all() {
    # TERM first (graceful: in-flight requests finish), KILL after STOP_TIMEOUT seconds.
    local pid _
    for pid in $gateway_pid $server_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $gateway_pid $server_pid; do
        for _ in $(seq 1 "$STOP_TIMEOUT"); do
            alive "$pid" || break
            sleep 1
        done
        if alive "$pid"; then
            echo "process $pid did not stop in ${STOP_TIMEOUT}s: killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$metrics_dir" ]; then rm -rf "$metrics_dir"; fi
    echo "stopped the gateway and the model server"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# training.export writes both files beside models.config; a repo assembled by hand (a
# models.config as TF Serving's docs show it) may lack them: the model server then stopped
# with "No such file or directory". Without them: its default batching, no Prometheus.
server_files=()
if [ -f "$REPO/batching_parameters.txt" ]; then
    server_files+=(--batching_parameters_file "$REPO/batching_parameters.txt")
else
    echo "no $REPO/batching_parameters.txt: the model server's default batching parameters"
fi
if [ -f "$REPO/monitoring.config" ]; then
    server_files+=(--monitoring_config_file "$REPO/monitoring.config")
else
    echo "no $REPO/monitoring.config: the model server exports no Prometheus metrics"
fi
echo "starting the model server: gRPC $HOST:$GRPC_PORT, REST $HOST:$REST_PORT, models $MODELS"
"$PYTHON" -m serving.modelserver \
    --host "$HOST" --port "$GRPC_PORT" --rest_api_port "$REST_PORT" \
    --model_config_file "$REPO/models.config" --model_config_file_poll_wait_seconds 5 \
    --enable_batching --tensorflow_intra_op_parallelism "$INTRA_OP_THREADS" \
    --enable_serialization_as_tensor_content "${server_files[@]}" &
server_pid=$!
"$PYTHON" -m scripts.wait_for --model-server "http://$HOST:$REST_PORT" --models "$MODELS" \
    --pid "$server_pid" --timeout "$READY_TIMEOUT"

export GATEWAY_BACKEND=${GATEWAY_BACKEND:-grpc}
export GATEWAY_GRPC_TARGET="$HOST:$GRPC_PORT"
export GATEWAY_REST_URL="http://$HOST:$REST_PORT"
export GATEWAY_MODEL_REPO="$REPO"
export GATEWAY_PORT
export GATEWAY_BIND_HOST="$HOST"
# Each gunicorn worker on a CPU of its own (serving/gateway/affinity.py): on a machine the
# service has to itself, a worker's event loop, call-wait and gRPC threads then wake each other
# on one warm CPU (loadtests/README.md, round 11: less gateway CPU per request, a lower p99).
# Containers keep the default (off): under a bare CPU quota the CPU set is the whole node.
export GATEWAY_CPU_AFFINITY=${GATEWAY_CPU_AFFINITY:-per-worker}
# One /metrics for all gunicorn workers (prometheus-client multiprocess mode).
metrics_dir=$(mktemp -d "${TMPDIR:-/tmp}/gateway-metrics.XXXXXX")
export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-$metrics_dir}
echo "starting the gateway on http://$HOST:$GATEWAY_PORT (backend: $GATEWAY_BACKEND)"
# = multihead-gateway: gunicorn with serving/gateway/gunicorn_conf.py
"$PYTHON" -m serving.gateway.command &
gateway_pid=$!
"$PYTHON" -m scripts.wait_for --url "http://$HOST:$GATEWAY_PORT/readyz" \
    --pid "$gateway_pid" --timeout "$READY_TIMEOUT"

URL="http://$HOST:$GATEWAY_PORT"
cat <<CURLS

Ready. Try (Ctrl-C stops the gateway and the model server):

CURLS
# The /v1/qa-style aliases only for the models of those names this repo serves (a repo of
# your own models answers them 404), then every model's generic :predict with its example.
"$PYTHON" -m scripts.print_curls --aliases --model-repo "$REPO" --url "$URL" || true
echo "Every model over the generic endpoint, with its spec's example:"
"$PYTHON" -m scripts.print_curls --model-repo "$REPO" --url "$URL" || true
cat <<CURLS
curl -s $URL/v1/models
curl -s $URL/readyz
curl -s $URL/metrics | head
open $URL/docs for the interactive API documentation
load test it: make loadtest GATEWAY_PORT=$GATEWAY_PORT GRPC_PORT=$GRPC_PORT MODEL_REPO=$REPO (or python -m loadtests.run --host $URL --grpc-target $HOST:$GRPC_PORT --model-repo $REPO; the qa, profile and similarity aliases)
load test every served model, your own too: make loadtest USERS=ModelUser GATEWAY_PORT=$GATEWAY_PORT GRPC_PORT=$GRPC_PORT MODEL_REPO=$REPO (or locust -f loadtests/served_models.py --host $URL --headless -u 4 -r 4 -t 30s)
CURLS

wait "$gateway_pid"
