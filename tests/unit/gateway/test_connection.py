"""A gateway worker's connection when its app answers before reading the body
(``serving.gateway.connection``), on gunicorn's real parser and response.

The raw-socket cases under real gunicorn (urllib's 413, ``Expect: 100-continue``) are in
``tests/integration/gateway/test_http_edge.py``.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from serving.gateway.connection import ContinueOnRead, body_left
from serving.gateway.one_write import OneWriteResponse

CLIENT = ("127.0.0.1", 50000)
BODY = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"


class ClientSocket:
    """The request bytes to read; every send recorded."""

    def __init__(self, request: bytes) -> None:
        self._data = io.BytesIO(request)
        self.sent = b""

    def recv(self, size: int) -> bytes:
        return self._data.read(size)

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def send(self, data: bytes) -> int:
        self.sent += data
        return len(data)


def _parsed(request: bytes) -> tuple[Any, ClientSocket]:
    sock = ClientSocket(request)
    return next(iter(RequestParser(Config(), sock, CLIENT))), sock


@pytest.mark.parametrize(
    ("request_bytes", "read", "left"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", False, True),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", True, False),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            False,
            True,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            True,
            False,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False, False),
    ],
)
def test_body_left_tells_an_unread_body(request_bytes: bytes, read: bool, left: bool) -> None:
    # A response that closes the connection lingers only then (OneWriteResponse.close).
    request = next(iter(RequestParser(Config(), ClientSocket(request_bytes), CLIENT)))
    if read:
        request.body.read()
    assert body_left(request) is left


@pytest.mark.parametrize("read_first", [True, False])
def test_100_continue_goes_out_when_the_body_is_read(read_first: bool) -> None:
    # gunicorn sent it before the app ran, so a body refused by its headers was uploaded.
    request, sock = _parsed(BODY + b"Expect: 100-continue\r\n\r\n{}")
    response, environ = wsgi.create(request, sock, CLIENT, "127.0.0.1:8000", Config())
    assert isinstance(response, OneWriteResponse)  # the workers' response (fixture below)
    assert sock.sent == b""  # not before the app runs
    assert isinstance(environ["wsgi.input"], ContinueOnRead)
    if read_first:
        assert environ["wsgi.input"].read(2) == b"{}"
        assert sock.sent == b"HTTP/1.1 100 Continue\r\n\r\n"
    response.start_response("413 REQUEST ENTITY TOO LARGE", [("Content-Length", "2")])
    response.write(b"{}")
    assert sock.sent.count(b"100 Continue") == int(read_first)
    # Answered without a 100: the client may or may not send the body, so no keep-alive.
    assert response.should_close() is not read_first


@pytest.fixture(autouse=True)
def _one_write_responses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wsgi, "Response", OneWriteResponse)
