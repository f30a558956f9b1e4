# The gateway image: Flask + gunicorn, tokenizers and the project's own TF Serving protos.
# No TensorFlow here: models run in the official tensorflow/serving image (deploy/compose.yaml).
# Build from the repository root:  docker build -t multihead-serving-gateway:0.1.0 .

# --- build stage: the project's wheel with its `serve` extra, pinned by the constraints ---
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY pyproject.toml README.md ./
COPY requirements/constraints.txt ./requirements/
COPY serving ./serving
COPY training ./training
# pip builds the wheel with the build backend pinned in pyproject.toml (hatchling), then
# installs it with the gateway's dependencies only (the `serve` extra: no TensorFlow).
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir \
        -c requirements/constraints.txt ".[serve]"

# --- runtime stage: the virtualenv (the package is installed in it), run as a non-root user ---
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
USER 10001:10001
EXPOSE 8000
# Liveness only (/healthz has no dependencies); /readyz tells whether the models answer.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# multihead-gateway runs gunicorn with the package's gunicorn_conf.py, which binds
# GATEWAY_BIND_HOST (0.0.0.0: every interface of the container) and GATEWAY_PORT; workers and
# threads come from GATEWAY_WORKERS and GATEWAY_THREADS.
CMD ["multihead-gateway"]
