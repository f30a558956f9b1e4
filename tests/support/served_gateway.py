"""The whole service for integration tests: the model server on a repo, and the gateway under
real gunicorn in front of it over gRPC, both on free ports until the block ends."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

from serving.gateway.launcher import RunningGateway, running_gateway
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
