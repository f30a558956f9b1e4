"""The gateway app (Flask test client) in front of a real local model server over gRPC."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from flask import Flask

from serving.gateway.app import create_app
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.logs import LOGGER_NAME, JsonFormatter
from serving.gateway.settings import GatewaySettings
from tests.support.grpc_servers import serve_handlers
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import close_app


@pytest.fixture(scope="session")
def model_server(tiny_model_server: ModelServerHandle) -> ModelServerHandle:
    """The session's model server on the tiny repo (tests/conftest.py)."""
    return tiny_model_server


def gateway_settings(repo: Path, **overrides: object) -> GatewaySettings:
    values: dict[str, object] = {"model_repo": repo, "log_level": "WARNING", **overrides}
    return GatewaySettings.model_validate(values)


def make_app(settings: GatewaySettings, target: str) -> Flask:
    backend = GrpcBackend(target, timeout_seconds=settings.request_timeout_seconds, retry=None)
    return create_app(settings, backend=backend)


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


def serve_predict(predict, metadata=None) -> tuple[grpc.Server, str]:
    """A real gRPC server answering TF Serving's Predict with ``predict`` (and
    GetModelMetadata with ``metadata``, if given); it and its target."""
    methods = {"Predict": grpc.unary_unary_rpc_method_handler(predict)}
    if metadata is not None:
        methods["GetModelMetadata"] = grpc.unary_unary_rpc_method_handler(metadata)
    handler = grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", methods)
    return serve_handlers(handler)


@pytest.fixture
def failing_server(model_server: ModelServerHandle):
    """A real gRPC server whose Predict sleeps ``delay`` seconds, then fails with ``code``.

    The gateway's fit check of a version (its metadata, the example's Predicts: request ids
    ``fit-check-...``) is answered by the real model server, as the version is checked
    before a request pinned to it runs.
    """
    servers = []
    seen_metadata: list[dict[str, str]] = []
    upstream = grpc.insecure_channel(model_server.grpc_target)
    service = "/tensorflow.serving.PredictionService"
    forward_predict = upstream.unary_unary(f"{service}/Predict")
    forward_metadata = upstream.unary_unary(f"{service}/GetModelMetadata")

    def start(code: grpc.StatusCode, delay: float = 0.0) -> str:
        def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = dict(context.invocation_metadata())
            if str(metadata.get("x-request-id", "")).startswith("fit-check-"):
                return bytes(forward_predict(request, timeout=30))
            seen_metadata.append(metadata)
            time.sleep(delay)
            context.abort(code, "raw backend text: tensorflow::Status details")
            return b""

        def metadata(request: bytes, context: grpc.ServicerContext) -> bytes:
            return bytes(forward_metadata(request, timeout=30))

        server, target = serve_predict(predict, metadata)
        servers.append(server)
        return target

    start.seen_metadata = seen_metadata  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.stop(grace=None)
    upstream.close()


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
