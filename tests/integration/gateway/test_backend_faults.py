"""The gateway under real gunicorn (gevent) while its real model server misbehaves: paused
(SIGSTOP) past the deadline, then resumed (SIGCONT).

The module owns its model server (the tests pause it), on the tiny repo's three models; each
test resumes it and waits until the gateway is ready again before it ends.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from serving.gateway.launcher import RunningGateway, running_gateway
from tests.support.model_server import ModelServerHandle, own_model_server

pytestmark = pytest.mark.slow
QA = {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}
DEADLINE = 3.0  # GATEWAY_REQUEST_TIMEOUT_SECONDS
BOUND = 60.0  # seconds: a bound on waits for hangs, never a measured figure


@pytest.fixture(scope="module")
def paused_server(tiny_repo: Path) -> Iterator[ModelServerHandle]:
    """The module's own model server: no other module's test may find it paused."""
    with own_model_server(tiny_repo, "the tests pause it") as server:
        yield server


@pytest.fixture(params=["grpc", "rest"])
def served(
    request: pytest.FixtureRequest, tiny_repo: Path, paused_server: ModelServerHandle
) -> Iterator[tuple[RunningGateway, ModelServerHandle]]:
    server = paused_server
    environment = {
        "GATEWAY_BACKEND": request.param,
        "GATEWAY_GRPC_TARGET": server.grpc_target,
        "GATEWAY_REST_URL": server.rest_url,
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_REQUEST_TIMEOUT_SECONDS": str(DEADLINE),
        "GATEWAY_VERSION_POLL_SECONDS": "0.5",
    }
    assert server.process is not None
    try:
        with running_gateway(environment, workers=1, ready_path="/readyz") as gateway:
            yield gateway, server
    finally:
        # A paused process ignores SIGTERM, and the next test's gateway needs it answering.
        os.kill(server.process.pid, signal.SIGCONT)


def _timed_get(url: str) -> tuple[int, float, dict[str, object]]:
    start = time.monotonic()
    answer = requests.get(url, timeout=BOUND)
    return answer.status_code, time.monotonic() - start, answer.json()


def _wait_until(check: object, timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_paused_model_server_costs_a_listing_one_deadline(served) -> None:
    """/readyz and /v1/models asked every model in turn, each call waiting the whole deadline
    (and /v1/models the signature after it): 3 and 6 deadlines with three models."""
    gateway, server = served
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    paths = ("/readyz", "/v1/models", "/v1/models/qa")
    with ThreadPoolExecutor(len(paths)) as pool:
        timed = pool.map(_timed_get, [gateway.url + path for path in paths])
        answers = dict(zip(paths, timed, strict=True))
    ready_status, _, ready_body = answers["/readyz"]
    assert ready_status == 503
    assert set(ready_body) == {"error", "detail"}
    reasons = {item["reason"] for item in ready_body["detail"]}  # type: ignore[attr-defined]
    assert reasons == {"backend deadline_exceeded"}, reasons
    models_status, _, models_body = answers["/v1/models"]
    assert models_status == 200
    errors = {model["error"] for model in models_body["models"]}  # type: ignore[attr-defined]
    assert errors == {"backend deadline_exceeded"}, errors
    for path, (_, seconds, _) in answers.items():
        # One deadline and the gateway's own time; a generous margin for a loaded machine.
        assert seconds < 1.6 * DEADLINE, f"{path} took {seconds:.1f} s"
    os.kill(server.process.pid, signal.SIGCONT)
    _wait_until(lambda: requests.get(f"{gateway.url}/readyz", timeout=BOUND).status_code == 200)
    answer = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
    assert answer.status_code == 200, answer.text


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose listen queue is full: the kernel drops new connections' SYNs, so each
    connect waits its whole timeout (a model server paused under load looks like this)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):  # listen(0) queues one or two; the rest are left connecting
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


def test_retries_end_at_the_deadline(tiny_repo: Path, unaccepting_port: int) -> None:
    """Each retry of a connect timeout (UNAVAILABLE) got the whole timeout again: a request
    was answered after retries + 1 connect timeouts, past its deadline (5 s for a 1.5 s one)."""
    environment = {
        "GATEWAY_BACKEND": "rest",
        "GATEWAY_REST_URL": f"http://127.0.0.1:{unaccepting_port}",
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_REQUEST_TIMEOUT_SECONDS": "1.5",
        "GATEWAY_CONNECT_TIMEOUT_SECONDS": "1.0",
        "GATEWAY_RETRIES": "4",
        "GATEWAY_VERSION_POLL_SECONDS": "600",
    }
    with running_gateway(environment, workers=1) as gateway:
        start = time.monotonic()
        answer = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
        seconds = time.monotonic() - start
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "1"
        assert set(answer.json()) == {"error", "detail"}
        assert seconds < 2 * 1.5, f"answered after {seconds:.1f} s"
