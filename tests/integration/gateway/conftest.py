"""Fixtures shared by the gateway's gunicorn-level modules.

``class_gateway``: the whole service (model server + gateway under gunicorn, 2 workers,
default settings but a 2 s ``GATEWAY_CLIENT_READ_TIMEOUT_SECONDS``, for test_stalled_clients)
once per worker class for the session: test_http_edge and
test_observability used to start the same two stacks each (a stack costs ~8 s on 2 cores).
Only tests that leave the service as they found it may use it; a test that kills a worker,
changes the repo or needs other settings starts its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.gateway.launcher import RunningGateway
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import served_gateway


@pytest.fixture(scope="session", params=["gevent", "gthread"])
def class_gateway(
    request: pytest.FixtureRequest, tiny_repo: Path, tiny_model_server: ModelServerHandle
) -> Iterator[RunningGateway]:
    """The tiny repo served under the gateway worker class ``gevent``, then ``gthread``."""
    settings = {"GATEWAY_WORKER_CLASS": request.param, "GATEWAY_CLIENT_READ_TIMEOUT_SECONDS": "2"}
    with served_gateway(tiny_repo, settings, server=tiny_model_server) as running:
        yield running
