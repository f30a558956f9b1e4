"""The gateway app (Flask test client) in front of a real local model server over gRPC."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from flask import Flask

from serving.gateway.app import create_app
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.logs import LOGGER_NAME, JsonFormatter
from serving.gateway.settings import GatewaySettings
from tests.support.model_server import ModelServerHandle, running_model_server


@pytest.fixture(scope="session")
def model_server(tiny_repo: Path) -> Iterator[ModelServerHandle]:
    with running_model_server(tiny_repo) as handle:
        yield handle


def gateway_settings(repo: Path, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {"model_repo": repo, "log_level": "WARNING", **overrides}
    return GatewaySettings.model_validate(values)


def make_app(settings: GatewaySettings, target: str) -> Flask:
    backend = GrpcBackend(target, timeout_seconds=settings.request_timeout_seconds, retry=None)
    return create_app(settings, backend=backend)


def close_app(app: Flask) -> None:
    """Stop the app's version poller and close its backend channel."""
    services = app.extensions["gateway"]
    services.registry.stop()
    services.backend.close()


@contextmanager
def gateway_app(repo: Path, target: str, **overrides: object) -> Iterator[Flask]:
    """:func:`make_app` over ``repo`` with ``overrides``, closed when the block ends."""
    app = make_app(gateway_settings(repo, **overrides), target)
    try:
        yield app
    finally:
        close_app(app)


@pytest.fixture
def app_factory(tiny_repo: Path, model_server: ModelServerHandle) -> Iterator[object]:
    apps: list[Flask] = []

    def build(target: str | None = None, **overrides: object) -> Flask:
        app = make_app(gateway_settings(tiny_repo, **overrides), target or model_server.grpc_target)
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def client(app_factory):
    return app_factory().test_client()


def serve_predict(predict) -> tuple[grpc.Server, str]:
    """A real gRPC server answering TF Serving's Predict with ``predict``; it and its target."""
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def failing_server():
    """A real gRPC server whose Predict sleeps ``delay`` seconds, then fails with ``code``."""
    servers = []
    seen_metadata: list[dict[str, str]] = []

    def start(code: grpc.StatusCode, delay: float = 0.0) -> str:
        def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
            seen_metadata.append(dict(context.invocation_metadata()))
            time.sleep(delay)
            context.abort(code, "raw backend text: tensorflow::Status details")
            return b""

        server, target = serve_predict(predict)
        servers.append(server)
        return target

    start.seen_metadata = seen_metadata  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.stop(grace=None)


@pytest.fixture
def gateway_log() -> Iterator[io.StringIO]:
    """The gateway's JSON log lines (the gateway's own formatter) written while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
