# The gateway image: Flask + gunicorn, tokenizers and the project's own TF Serving protos.
# No TensorFlow here: models run in the official tensorflow/serving image (deploy/compose.yaml).
# Build from the repository root:  docker build -t multihead-serving-gateway:0.1.0 .

# --- build stage: a virtualenv with the gateway's pinned runtime dependencies only ---
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements/gateway.in requirements/constraints.txt ./requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir \
        -c requirements/constraints.txt -r requirements/gateway.in

# --- runtime stage: the virtualenv and the serving code, run as a non-root user ---
FROM python:3.11.13-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_PORT=8000 \
    GATEWAY_BACKEND=grpc \
    GATEWAY_GRPC_TARGET=tfserving:8500 \
    GATEWAY_REST_URL=http://tfserving:8501 \
    GATEWAY_MODEL_REPO=/models \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY serving/__init__.py serving/contract.py serving/tokenization.py serving/spec.py serving/encoding.py ./serving/
COPY serving/gateway ./serving/gateway
COPY serving/protos ./serving/protos
USER 10001:10001
EXPOSE 8000
# Liveness only (/healthz has no dependencies); /readyz tells whether the models answer.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# gunicorn_conf.py binds GATEWAY_BIND_HOST (0.0.0.0: every interface of the container) and
# GATEWAY_PORT; workers and threads come from GATEWAY_WORKERS and GATEWAY_THREADS.
CMD ["gunicorn", "-c", "serving/gateway/gunicorn_conf.py", "serving.gateway.app:create_app()"]
