"""The REST backend's keep-alive transport against a real socket server that answers as
scripted: reuse, a connection the server closed while idle, answers it cannot read, and
failures that are the server's (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL)."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from serving.gateway.backends.rest_transport import Transport
from serving.gateway.errors import BackendError, BackendFailure
from tests.support.scripted_http import BOUND, OK, answer, call, deadline, serve

__all__ = ["serve"]  # the fixture, used by name


def test_connections_are_kept_and_reused(serve) -> None:
    server = serve(answer(OK))
    transport = Transport(server.url + "/prefix/", 1.0, pool_size=4)
    assert [call(transport) for _ in range(3)] == [(200, b"{}")] * 3
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /prefix/v1/models/m:predict HTTP/1.1\r\n")
    assert b"accept-encoding: identity" in server.requests[0].lower()


def test_an_idle_connection_the_server_closed_is_replaced_once(serve) -> None:
    """A keep-alive connection the server closed while idle (cheroot's and TF Serving's idle
    timeouts) failed the next call: it is sent once more on a new connection."""
    server = serve(answer(OK, keep=False))  # answers as keep-alive, then closes
    transport = Transport(server.url, 1.0, pool_size=4)
    assert call(transport) == (200, b"{}")
    time.sleep(0.1)  # the close reaches the client's socket
    assert call(transport) == (200, b"{}")
    assert server.connections == 2


def test_a_new_connection_broken_before_the_answer_is_unavailable(serve) -> None:
    """Not re-sent by the transport (the retry policy decides): retryable UNAVAILABLE."""
    server = serve(lambda connection, request: False)  # reads the request, closes
    with pytest.raises(BackendError) as raised:
        call(Transport(server.url, 1.0, pool_size=4))
    assert raised.value.failure is BackendFailure.UNAVAILABLE and raised.value.retryable
    assert server.connections == 1


def test_a_refused_connection_is_unavailable() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(BackendError) as raised:
        call(Transport(f"http://127.0.0.1:{port}", 1.0, pool_size=4))
    assert raised.value.failure is BackendFailure.UNAVAILABLE and raised.value.retryable


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}",  # cut short, then closed
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}",  # bad chunk size
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",  # no HTTP at all
    ],
    ids=["cut-short", "bad-chunks", "not-asked-encoding", "not-http"],
)
def test_an_answer_it_cannot_read_is_internal(serve, raw: bytes) -> None:
    server = serve(answer(raw, keep=False))
    transport = Transport(server.url, 1.0, pool_size=4)
    with pytest.raises(BackendError) as raised:
        call(transport)
    assert raised.value.failure is BackendFailure.INTERNAL and not raised.value.retryable
    assert not transport._idle  # the connection is not reused


def test_a_connection_close_answer_is_not_kept(serve) -> None:
    raw = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(answer(raw, keep=False))
    transport = Transport(server.url, 1.0, pool_size=4)
    assert [call(transport) for _ in range(2)] == [(200, b"{}")] * 2
    assert server.connections == 2 and not transport._idle


def test_an_answer_that_never_comes_is_deadline_exceeded(serve) -> None:
    gate = threading.Event()
    server = serve(lambda connection, request: gate.wait(BOUND))
    started = time.monotonic()
    with pytest.raises(BackendError) as raised:
        call(Transport(server.url, 1.0, pool_size=4), seconds=0.3)
    gate.set()
    assert raised.value.failure is BackendFailure.DEADLINE_EXCEEDED
    assert time.monotonic() - started < BOUND


def test_a_body_dripped_past_the_deadline_is_deadline_exceeded(serve) -> None:
    """Each receive gets the time left; the body's end is checked against the deadline."""

    def drip(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            time.sleep(0.02)
            try:
                connection.sendall(b" ")
            except OSError:
                return False
        return True

    server = serve(drip)
    with pytest.raises(BackendError) as raised:
        call(Transport(server.url, 1.0, pool_size=4), seconds=0.3)
    assert raised.value.failure is BackendFailure.DEADLINE_EXCEEDED


def test_idle_connections_are_bounded_by_the_pool_size(serve) -> None:
    gate = threading.Barrier(4, timeout=BOUND)

    def together(connection: socket.socket, request: bytes) -> bool:
        gate.wait()  # four calls in flight at once: four connections
        connection.sendall(OK)
        return True

    server = serve(together)
    transport = Transport(server.url, 1.0, pool_size=2)
    threads = [threading.Thread(target=call, args=(transport,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert server.connections == 4 and len(transport._idle) == 2
    transport.close()
    assert not transport._idle


def test_a_header_that_would_split_the_request_is_refused_as_internal(serve) -> None:
    server = serve(answer(OK))
    transport = Transport(server.url, 1.0, pool_size=4)
    with pytest.raises(BackendError) as raised:
        transport.call("GET", "/v1/models/m", None, {"X-Request-ID": "a\r\nX: y"}, deadline())
    assert raised.value.failure is BackendFailure.INTERNAL
    assert not server.requests


@pytest.mark.parametrize("url", ["ftp://host/", "localhost:8501", "http://"])
def test_a_base_url_that_is_no_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        Transport(url, 1.0, pool_size=4)


def test_a_forked_child_opens_its_own_connections(serve) -> None:
    """Connections made before a fork are the parent's: the child never sends on them."""
    server = serve(answer(OK))
    transport = Transport(server.url, 1.0, pool_size=4)
    assert call(transport) == (200, b"{}")
    pid = os.fork()
    if pid == 0:  # the child: one call, then leave without running pytest's teardown
        try:
            call(transport)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert call(transport) == (200, b"{}")  # the parent's connection still answers it
    assert server.connections == 2


def test_a_call_in_flight_at_close_closes_its_connection(serve) -> None:
    """Its connection was put back in the pool that close() had emptied: open until the gc
    found it (a ResourceWarning "unclosed <socket ...>" in whichever test a gc came in), as
    close()'s promise says: calls in flight close theirs when done."""
    asked, release = threading.Event(), threading.Event()

    def held(connection: socket.socket, request: bytes) -> bool:
        asked.set()
        release.wait(BOUND)
        connection.sendall(OK)
        return True

    server = serve(held)
    transport = Transport(server.url, 1.0, pool_size=4)
    answers: list[tuple[int, bytes]] = []
    caller = threading.Thread(target=lambda: answers.append(call(transport)))
    caller.start()
    assert asked.wait(BOUND)
    transport.close()
    release.set()
    caller.join(BOUND)
    assert answers == [(200, b"{}")]
    assert not transport._idle  # closed, not pooled
    assert call(transport) == (200, b"{}")  # a call after close() opens a new one, as gRPC's
    assert server.connections == 2 and len(transport._idle) == 1
    transport.close()
