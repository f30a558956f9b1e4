"""The whole service for integration tests: the model server on a repo, and the gateway under
real gunicorn in front of it over gRPC, both on free ports until the block ends; or the
gateway's app in-process in front of a model server, over any backend."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from serving.gateway.app import create_app
from serving.gateway.launcher import RunningGateway, running_gateway
from serving.gateway.settings import GatewaySettings
from tests.support.model_server import ModelServerHandle, running_model_server


@contextmanager
def served_gateway(
    repo: Path,
    settings: Mapping[str, str] | None = None,
    workers: int = 2,
    threads: int = 4,
    server: ModelServerHandle | None = None,
) -> Iterator[RunningGateway]:
    """The gateway (``GATEWAY_*`` ``settings`` on top of the gRPC backend and both of the model
    server's addresses; gunicorn's ``workers``, and ``threads`` for gthread), handed over
    once ``/readyz`` answers 200. ``server``: a model server already serving ``repo`` (the
    session's ``tiny_model_server``); without it one is started for the block."""
    started = running_model_server(repo) if server is None else nullcontext(server)
    with started as handle:
        environment = {
            "GATEWAY_BACKEND": "grpc",
            "GATEWAY_GRPC_TARGET": handle.grpc_target,
            "GATEWAY_REST_URL": handle.rest_url,
            "GATEWAY_MODEL_REPO": str(repo),
            **(settings or {}),
        }
        with running_gateway(environment, workers, threads, ready_path="/readyz") as running:
            yield running


def close_app(app: Flask) -> None:
    """Stop the app's version poller and close its backend (the poller must not outlive the
    model server, nor pytest's stderr)."""
    services = app.extensions["gateway"]
    services.registry.stop()
    services.backend.close()


@contextmanager
def backend_client(repo: Path, server: ModelServerHandle, backend: str) -> Iterator[FlaskClient]:
    """A test client of ``create_app`` over ``repo``, reaching ``server`` by ``backend``
    (``grpc``, ``rest`` or ``local``), closed when the block ends."""
    settings = GatewaySettings.model_validate(
        {
            "backend": backend,
            "grpc_target": server.grpc_target,
            "rest_url": server.rest_url,
            "model_repo": repo,
            "log_level": "WARNING",
        }
    )
    app = create_app(settings)
    try:
        yield app.test_client()
    finally:
        close_app(app)
