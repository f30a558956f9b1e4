"""The REST transport's calls in flight, so its sockets to the model server, are capped
(``max_connections``; ``GATEWAY_REST_MAX_CONNECTIONS``): against a real socket server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from serving.gateway.backends.rest_transport import Answer, Transport
from serving.gateway.errors import BackendError, BackendFailure, backend_to_gateway
from tests.support.scripted_http import BOUND, OK, Scripted


@pytest.fixture
def held() -> Iterator[tuple[Scripted, threading.Event]]:
    """A server that holds every answer until the event is set."""
    gate = threading.Event()

    def hold(connection: object, request: bytes) -> bool:
        gate.wait(BOUND)
        connection.sendall(OK)  # type: ignore[attr-defined]
        return True

    server = Scripted(hold)
    yield server, gate
    gate.set()
    server.listener.close()


def _calls(transport: Transport, count: int) -> tuple[list[threading.Thread], list[object]]:
    """``count`` calls started together (a barrier), each on its own thread."""
    together = threading.Barrier(count, timeout=BOUND)
    results: list[object] = []

    def call() -> None:
        together.wait()
        try:
            results.append(
                transport.call("GET", "/v1/models/m", None, {}, time.monotonic() + BOUND)
            )
        except BackendError as error:
            results.append(error)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def _until(condition: object) -> None:
    end = time.monotonic() + BOUND  # a bound on the wait, not a measured figure
    while not condition() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.01)


def test_a_burst_opens_at_most_max_connections(held) -> None:
    # Found by the closing note: a burst of calls opened a socket each (only 16 idle ones
    # were kept afterwards): twelve calls at once were twelve connections to the model server.
    server, gate = held
    transport = Transport(server.url, 1.0, pool_size=16, max_connections=3)
    threads, results = _calls(transport, 12)
    _until(lambda: len(server.requests) >= 3)
    gate.set()
    for thread in threads:
        thread.join(BOUND)
    answers = [result for result in results if isinstance(result, Answer)]
    assert [answer.status for answer in answers] == [200] * 12
    assert server.connections == 3 and len(transport._idle) == 3


def test_a_call_that_finds_no_free_connection_by_its_deadline_is_unavailable(held) -> None:
    server, gate = held
    transport = Transport(server.url, 1.0, pool_size=4, max_connections=1)
    threads, results = _calls(transport, 1)
    _until(lambda: len(server.requests) >= 1)  # the one connection is busy
    with pytest.raises(BackendError) as raised:
        transport.call("GET", "/v1/models/m", None, {}, time.monotonic() + 0.2)
    gate.set()
    threads[0].join(BOUND)
    assert raised.value.failure is BackendFailure.UNAVAILABLE
    assert "all 1 connections to the model server stayed busy" in raised.value.message
    answer = backend_to_gateway(raised.value, retry_after_seconds=1)  # 503, never a 500
    assert answer.status == 503 and answer.headers == {"Retry-After": "1"}
    assert server.connections == 1 and isinstance(results[0], Answer)
