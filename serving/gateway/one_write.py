"""The gateway workers' HTTP/1 response: one ``sendall`` of headers and body, ``100
Continue`` only when the app reads the body, and a close that lingers when the body was not
read.

gunicorn's own :class:`gunicorn.http.wsgi.Response` sends the header block and the body
separately, and each send on a gevent socket costs a trip through its Python send loop and
one more segment (and wake-up) for the client.
"""

from __future__ import annotations

import socket
import time
from email.utils import formatdate
from typing import Any

from gunicorn import util
from gunicorn.http import wsgi

from serving.gateway.chunked import BoundedChunkedReader
from serving.gateway.connection import ContinueOnRead, body_left, linger
from serving.gateway.logs import PerSecond


class CapturingSocket:
    """Stands in for the client socket while gunicorn writes a header block or its error
    page: what is sent is kept in ``written``; anything else is the real socket's."""

    def __init__(self, real: socket.socket) -> None:
        self._real = real
        self.written = bytearray()

    def sendall(self, data: bytes) -> None:
        """Keep ``data``."""
        self.written.extend(data)

    def send(self, data: bytes) -> int:
        """Keep ``data``, all of it sent."""
        self.written.extend(data)
        return len(data)

    def gettimeout(self) -> float | None:
        """0: gunicorn's write_nonblock then writes straight away, without setblocking."""
        return 0.0

    def setblocking(self, flag: bool) -> None:
        """Nothing to do: the buffer never blocks."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


ONE_WRITE_MAX_BODY = 64 * 1024  # above this, copying the body to join it costs more than a send


class OneWriteResponse(wsgi.Response):  # type: ignore[misc]
    """gunicorn's response whose header block waits for the first body bytes.

    Only :meth:`write` holds the headers back (an unchunked body of at most
    ``ONE_WRITE_MAX_BODY`` bytes); ``sendfile``, ``close`` and chunked bodies keep gunicorn's
    order and sends. Headers whose body is not sent (HEAD, 204, a body past Content-Length)
    are sent when ``write`` returns, as gunicorn would have sent them.
    """

    sock: Any  # gunicorn (untyped) sets it; the client socket
    req: Any  # the request answered (gunicorn's Request)
    headers_sent: bool  # gunicorn's: the status line and headers are out
    _hold = False
    _held: bytes | None = None

    def __init__(self, req: Any, sock: Any, cfg: Any) -> None:
        """gunicorn's response; a request that expects ``100 Continue`` gets it when the app
        first reads the body (:class:`ContinueOnRead`), not before the app runs."""
        super().__init__(req, sock, cfg)
        if getattr(req, "_expected_100_continue", False):
            # gunicorn's wsgi.create sends "100 Continue" right after building this response
            # when the flag is set, so a body about to be refused from its headers alone (an
            # early 413, 415, 411, 404) was uploaded whole first. The flag is gunicorn's
            # private attribute: if a release renames it, gunicorn's own behaviour stays.
            req._expected_100_continue = False
            req.body = ContinueOnRead(req.body, self)

    def should_close(self) -> bool:
        """gunicorn's rule, and close after a chunked body the workers' bound refused
        (:mod:`serving.gateway.chunked`) or the app did not read to its end: the rest of the
        body cannot be skipped safely, and gunicorn would read it as the next request."""
        body = getattr(self.req, "body", None)
        if isinstance(body, ContinueOnRead) and not body.continued:
            return True  # answered without reading: the client may or may not send the body
        if getattr(body, "failed", False) is True:
            # Reading the body raised (a read timeout: 408, a malformed chunk: 400): gunicorn
            # closes such a connection after the answer; the answer says so.
            return True
        reader = getattr(body, "reader", None)
        if isinstance(reader, BoundedChunkedReader) and reader.refused:
            return True
        if getattr(reader, "parser", None) is not None:
            # A chunked body the app answered without reading (an early 415, 411, 404):
            # gunicorn would parse the rest as it reads the next request, and a malformed
            # chunk there got a second answer (400) to this one request, which a pipelining
            # client takes for its next request's answer, and a second access line.
            return True
        return bool(super().should_close())

    def write(self, arg: bytes) -> None:
        """Send headers and ``arg`` with one ``sendall`` when they go out together."""
        if self.headers_sent or self.chunked or len(arg) > ONE_WRITE_MAX_BODY:
            super().write(arg)
            return
        self._hold = True
        try:
            super().write(arg)
        finally:
            self._hold = False
            held, self._held = self._held, None
            if held:
                send_all(self.sock, held)

    def send_headers(self) -> None:
        """gunicorn's header block; kept back inside :meth:`write` for the body to join."""
        if not self._hold or self.headers_sent:
            super().send_headers()
            return
        real = self.sock
        capture = CapturingSocket(real)
        self.sock = capture
        try:
            super().send_headers()
        finally:
            self.sock = real
        self._held = bytes(capture.written)

    def _emit_body(self, data: bytes) -> None:
        held, self._held = self._held, None
        if self.chunked:
            super()._emit_body(held + data if held else data)
        else:
            send_all(self.sock, held + data if held else data)

    def close(self) -> None:
        """gunicorn's end of the response; then, when the connection is to close with the
        request's body not read to its end (an early 413, 415, 411 or 404), linger
        (:func:`linger`) so that the close does not reset the connection."""
        super().close()
        # body_left first: read to its end (nearly every request) answers without a call more.
        if body_left(self.req) and self.should_close():
            linger(self.sock)


def send_all(sock: Any, data: bytes) -> None:
    """``sock.sendall(data)`` that tries one ``send`` first: an answer fits the socket's send
    buffer nearly always, and gevent's ``sendall`` asks the kernel for that buffer's size
    (``getsockopt(SO_SNDBUF)``, one system call per answer) before sending. The rest of a
    partial send, if any, goes through ``sendall``."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


_DATE = PerSecond(lambda second: formatdate(second, usegmt=True))


def http_date(timestamp: float | None = None) -> str:
    """gunicorn's ``util.http_date`` (an IMF-fixdate, RFC 9110 section 5.6.7: whole seconds)
    formatted once per second for the current time: ``email.utils.formatdate`` took ~1% of a
    worker's CPU per qa answer (loadtests/README.md, round 17)."""
    if timestamp is not None:
        return formatdate(timestamp, usegmt=True)
    return _DATE(int(time.time()))


def use_one_write_responses() -> None:
    """Make this process's gunicorn build :class:`OneWriteResponse` for HTTP/1 answers.

    ``gunicorn.http.wsgi.create`` reads the module's ``Response`` when no response class is
    given (the HTTP/1 path of every worker); gunicorn has no setting for it. Called in each
    worker after the fork, so only the gateway's worker processes change. gunicorn's
    ``util.http_date`` (the Date header of every answer and error page) becomes
    :func:`http_date`.
    """
    wsgi.Response = OneWriteResponse
    util.http_date = http_date
