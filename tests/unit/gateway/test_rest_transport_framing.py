"""The REST backend's keep-alive transport against servers that frame answers oddly: interim
(1xx) answers, bytes past an answer's end (a second answer to one request, a 204's body),
codings, answers past the size limit, and base URLs of other forms (IPv6, credentials)."""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
import time

import pytest

from serving.gateway.backends.rest_transport import Transport
from serving.gateway.errors import BackendError, BackendFailure
from tests.support.scripted_http import BOUND, OK, Scripted, answer, call, serve

__all__ = ["serve"]  # the fixture, used by name


def _body(text: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text)


@pytest.mark.parametrize("interim", [b"100 Continue", b"102 Processing", b"103 Early Hints"])
def test_interim_answers_are_skipped(serve, interim: bytes) -> None:
    """http.client skipped only 100: a 103 was taken as the answer (status 103, no body) and
    the real answer stayed on the pooled connection, to be read as the next call's."""
    calls = iter([b"1", b"2"])

    def script(connection: socket.socket, request: bytes) -> bool:
        head = b"HTTP/1.1 " + interim + b"\r\nLink: </a>; rel=preload\r\n\r\n"
        connection.sendall(head + _body(next(calls)))
        return True

    server = serve(script)
    transport = Transport(server.url, 1.0, pool_size=4)
    assert [call(transport) for _ in range(2)] == [(200, b"1"), (200, b"2")]


def test_a_switching_protocols_answer_is_internal_and_not_pooled(serve) -> None:
    server = serve(answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n" + OK))
    transport = Transport(server.url, 1.0, pool_size=4)
    with pytest.raises(BackendError) as raised:
        call(transport)
    assert raised.value.failure is BackendFailure.INTERNAL
    assert not transport._idle


@pytest.mark.parametrize(
    ("first", "stale"),
    [
        (_body(b"1"), _body(b"stale")),  # two answers to one request
        (b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", b"stale"),  # a 204's body
        (b"HTTP/1.1 304 Not Modified\r\n\r\n", _body(b"stale")),
    ],
    ids=["two-answers", "204-with-body", "304-then-answer"],
)
def test_bytes_past_an_answer_are_never_the_next_calls_answer(
    serve, first: bytes, stale: bytes
) -> None:
    """Bytes a server sent past an answer's end were read as the next call's answer on the
    pooled connection (another request's answer given to this one). The stale bytes are sent
    once the first call has its answer, so they wait in the socket, not in its buffer."""
    answered, sent = threading.Event(), threading.Event()
    calls = iter([first, _body(b"2"), _body(b"3")])

    def script(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(next(calls))
        if not sent.is_set():
            answered.wait(BOUND)
            connection.sendall(stale)
            sent.set()
        return True

    server = serve(script)
    transport = Transport(server.url, 1.0, pool_size=4)
    # A 204 or 304 is no answer the backend reads; the next call is what matters.
    with contextlib.suppress(BackendError):
        call(transport)
    answered.set()
    assert sent.wait(BOUND)
    assert call(transport) == (200, b"2")


@pytest.mark.parametrize("coding", [b"", b"identity", b"IDENTITY", b" identity , identity"])
def test_no_coding_is_read(serve, coding: bytes) -> None:
    """An empty Content-Encoding (an empty list: no coding) was refused as INTERNAL."""
    raw = b"HTTP/1.1 200 OK\r\nContent-Encoding:" + coding + b"\r\nContent-Length: 2\r\n\r\n{}"
    server = serve(answer(raw))
    assert call(Transport(server.url, 1.0, pool_size=4)) == (200, b"{}")


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: identity, gzip\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-Encoding: br\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        # Read to the close as is, this was the chunked and gzipped bytes as the body.
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["coding-list", "two-codings", "gzip-chunked"],
)
def test_a_coding_not_asked_for_is_internal(serve, raw: bytes) -> None:
    server = serve(answer(raw, keep=False))
    transport = Transport(server.url, 1.0, pool_size=4)
    with pytest.raises(BackendError) as raised:
        call(transport)
    assert raised.value.failure is BackendFailure.INTERNAL and not transport._idle


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n" + b" " * 101,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n%s\r\n0\r\n\r\n"
        % (b" " * 101),
        b"HTTP/1.0 200 OK\r\n\r\n" + b" " * 101,  # read to the close
    ],
    ids=["length", "chunked", "to-close"],
)
def test_an_answer_past_the_size_limit_is_internal(serve, raw: bytes) -> None:
    """There was no limit: a model server (or anything at its address) answering gigabytes
    grew the worker by as much; the limit is the gRPC backend's receive limit."""
    server = serve(answer(raw, keep=False))
    transport = Transport(server.url, 1.0, pool_size=4, max_answer_bytes=100)
    with pytest.raises(BackendError) as raised:
        call(transport)
    assert raised.value.failure is BackendFailure.INTERNAL and "100 bytes" in str(raised.value)
    assert not transport._idle
    transport = Transport(server.url, 1.0, pool_size=4, max_answer_bytes=101)
    assert call(transport)[0] == 200


def test_an_ipv6_base_url_is_called() -> None:
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback")
    listener.close()
    server = Scripted(answer(OK), host="::1")
    try:
        assert call(Transport(server.url, 1.0, pool_size=4)) == (200, b"{}")
        assert b"\r\nHost: [::1]:" in server.requests[0]
    finally:
        server.listener.close()


def test_credentials_in_the_base_url_are_sent_as_basic_auth(serve) -> None:
    """requests sent a base URL's user:password as Basic auth; http.client dropped them (the
    model server behind an authenticating proxy answered 401: a 502 for every call)."""
    server = serve(answer(OK))
    url = server.url.replace("http://", "http://us%40er:p%3Ass@")
    assert call(Transport(url, 1.0, pool_size=4)) == (200, b"{}")
    token = base64.b64encode(b"us@er:p:ss")
    assert b"\r\nAuthorization: Basic " + token + b"\r\n" in server.requests[0]


@pytest.mark.parametrize("url", ["http://host:8501/?a=1", "http://host:8501/#x"])
def test_a_base_url_with_a_query_or_fragment_is_refused(url: str) -> None:
    """A query would have been sent inside every call's path ('/?a=1/v1/models/...')."""
    with pytest.raises(ValueError, match="query or fragment"):
        Transport(url, 1.0, pool_size=4)


EMPTY = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"  # no body: no body's deadline check
DRIPS = {
    "header": [bytes([byte]) for byte in EMPTY[:-2] + b"X-Drip: "] + [b"x"] * 200 + [b"\r\n\r\n"],
    "interim": [b"HTTP/1.1 103 Early Hints\r\n\r\n"] * 200 + [EMPTY],
}


@pytest.mark.parametrize("pieces", DRIPS.values(), ids=DRIPS.keys())
def test_a_head_dripped_past_the_deadline_is_deadline_exceeded(serve, pieces) -> None:
    """The deadline bounded the body only: a status line and headers dripped a byte at a
    time (or interim answers one after another) held the call as long as they came, each
    receive within the socket's timeout. Sent here over ~4 s against a 0.3 s deadline:
    before, the call answered 200 once the head ended."""

    def drip(connection: socket.socket, request: bytes) -> bool:
        with contextlib.suppress(OSError):  # the client gave up: the point
            for piece in pieces:
                connection.sendall(piece)
                time.sleep(0.02)
        return False

    server = serve(drip)
    with pytest.raises(BackendError) as raised:
        call(Transport(server.url, 1.0, pool_size=4), seconds=0.3)
    assert raised.value.failure is BackendFailure.DEADLINE_EXCEEDED
