"""The bound on the wait for a request's bytes (``serving.gateway.read_timeout``) on real
sockets and gunicorn's own parser and body readers; the same under real gunicorn, both worker
classes, is ``tests/integration/gateway/test_stalled_clients.py``.

A body that never arrived held its connection (and a gthread thread) for good: 200 s later
it was still unanswered.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import message, parser
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.errors import NoMoreData
from gunicorn.http.parser import RequestParser

from serving.gateway.chunked import ChunkOverLimitError, use_bounded_chunked_bodies
from serving.gateway.errors import GatewayError
from serving.gateway.read_timeout import (
    RCVTIMEO,
    ReadTimeout,
    TimedRequest,
    TimedSocketUnreader,
    receive_timeout,
    timeval,
    use_timed_socket_reads,
)
from serving.gateway.request_body import read_body


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the server's end, the client's end) of a connected pair."""
    server, client = socket.socketpair()
    with server, client:
        yield server, client


@pytest.fixture
def timed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser, "SocketUnreader", parser.SocketUnreader)  # restored after
    monkeypatch.setattr(message, "ChunkedReader", message.ChunkedReader)
    monkeypatch.setattr(parser.RequestParser, "mesg_class", parser.RequestParser.mesg_class)
    use_timed_socket_reads()
    use_bounded_chunked_bodies(1024)


def _environ(request: Any) -> dict[str, Any]:
    """The WSGI keys ``read_body`` reads, from gunicorn's parsed ``request``."""
    headers = dict(request.headers)
    environ: dict[str, Any] = {"wsgi.input": request.body, "wsgi.input_terminated": True}
    if "CONTENT-LENGTH" in headers:
        environ["CONTENT_LENGTH"] = headers["CONTENT-LENGTH"]
    if "TRANSFER-ENCODING" in headers:
        environ["HTTP_TRANSFER_ENCODING"] = headers["TRANSFER-ENCODING"]
    return environ


def _parsed(server: socket.socket, client: socket.socket, sent: bytes) -> Any:
    client.sendall(sent)
    return next(iter(RequestParser(Config(), server, ("127.0.0.1", 1))))


def test_a_read_that_times_out_is_a_read_timeout(pair: tuple[socket.socket, ...]) -> None:
    server, client = pair
    server.settimeout(0.05)  # gevent's way: the socket's own timeout
    client.sendall(b"0123456789")
    with pytest.raises(ReadTimeout) as stalled:
        Body(LengthReader(TimedSocketUnreader(server), 100)).read(100)
    assert isinstance(stalled.value, NoMoreData)  # in the headers: gunicorn closes quietly
    assert "0.05 s" in str(stalled.value)


def test_so_rcvtimeo_ends_a_blocking_read(pair: tuple[socket.socket, ...]) -> None:
    # gthread's way: a blocking socket (no Python timeout, no poll per read) with the kernel's
    # receive timeout; the read that ran out is EAGAIN.
    server, _ = pair
    server.setsockopt(*RCVTIMEO, timeval(0.05))
    assert server.gettimeout() is None
    assert receive_timeout(server) == pytest.approx(0.05, abs=0.02)  # the kernel rounds to ticks
    with pytest.raises(ReadTimeout):
        TimedSocketUnreader(server).chunk()


def test_a_timeval_is_never_zero() -> None:
    # A zero timeval is no timeout at all: a setting under a microsecond gets one.
    assert timeval(1e-9) == struct.pack("ll", 0, 1)
    assert timeval(2.5) == struct.pack("ll", 2, 500_000)


@pytest.mark.usefixtures("timed")
@pytest.mark.parametrize(
    "sent",
    [
        b"Content-Length: 100\r\n\r\n0123456789",
        b"Transfer-Encoding: chunked\r\n\r\na\r\n012",
        b"Transfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_a_stalled_body_is_408(pair: tuple[socket.socket, ...], sent: bytes) -> None:
    server, client = pair
    server.settimeout(0.05)
    request = _parsed(server, client, b"POST /v1/qa HTTP/1.1\r\nHost: x\r\n" + sent)
    with pytest.raises(GatewayError) as refused:
        read_body(1024, _environ(request))
    assert refused.value.status == 408
    assert request.body.failed  # the connection is not reused: its next bytes are the body's


@pytest.mark.usefixtures("timed")
def test_a_chunk_announced_past_the_limit_is_413_before_its_bytes(
    pair: tuple[socket.socket, ...],
) -> None:
    server, client = pair
    server.settimeout(5.0)  # never reached: nothing more is read
    head = b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = _parsed(server, client, head + b"%x\r\n" % 2**80)
    with pytest.raises(GatewayError) as refused:
        read_body(1024, _environ(request))
    assert refused.value.status == 413
    assert isinstance(refused.value.__cause__, ChunkOverLimitError)


@pytest.mark.usefixtures("timed")
def test_a_body_within_its_limit_is_read(pair: tuple[socket.socket, ...]) -> None:
    server, client = pair
    server.settimeout(0.05)
    head = b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request = _parsed(server, client, head + b"400\r\n" + b"x" * 1024 + b"\r\n0\r\n\r\n")
    assert read_body(1024, _environ(request)) == b"x" * 1024


def test_gevents_timeout_slot_is_the_sockets_timeout() -> None:
    # The gevent worker stores the timeout in this slot, not through settimeout (cheaper);
    # a gevent release that moved it would leave the body unbounded again.
    from gevent import socket as gevent_socket

    server, client = gevent_socket.socketpair()
    with server, client:
        server.timeout = 0.05
        assert server.gettimeout() == 0.05
        client.sendall(b"0123456789")
        with pytest.raises(ReadTimeout):
            Body(LengthReader(TimedSocketUnreader(server), 100)).read(100)
        server.timeout = None
        assert server.gettimeout() is None


@pytest.fixture
def header_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser, "SocketUnreader", parser.SocketUnreader)  # restored after
    monkeypatch.setattr(parser.RequestParser, "mesg_class", parser.RequestParser.mesg_class)
    monkeypatch.setattr(TimedRequest, "header_seconds", TimedRequest.header_seconds)
    use_timed_socket_reads(0.01)


@pytest.mark.usefixtures("header_bound")
def test_headers_trickled_past_the_bound_are_refused(pair: tuple[socket.socket, ...]) -> None:
    # Slowloris under gthread: each byte came within the read timeout, so only a bound on the
    # whole header block ends it.
    server, client = pair
    server.settimeout(5.0)  # the read timeout is not what ends it
    client.sendall(b"GET /healthz HTTP/1.1\r\n")
    later = [
        threading.Timer(0.05, client.sendall, [b"Host: x\r\n"]),
        threading.Timer(0.1, client.sendall, [b"X-Pad: a\r\n"]),
    ]
    for timer in later:
        timer.start()
    try:
        with pytest.raises(ReadTimeout) as stalled:
            next(iter(RequestParser(Config(), server, ("127.0.0.1", 1))))
    finally:
        for timer in later:
            timer.join()
    assert "0.01 s" in str(stalled.value)


@pytest.mark.usefixtures("header_bound")
def test_headers_in_one_read_do_not_read_the_clock(pair: tuple[socket.socket, ...]) -> None:
    server, client = pair
    request = _parsed(server, client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(request, TimedRequest)
    assert request._headers_since is None
