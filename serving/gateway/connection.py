"""How a gateway worker's HTTP/1 connection treats a request body its app answers early.

Two gunicorn behaviours made a body refused from its headers alone (a ``Content-Length``
over the limit: 413; a wrong ``Content-Type``: 415; no length: 411; an unknown model) cost
the client, with the answer lost or late:

- gunicorn sends ``100 Continue`` before the app runs, so a client that sent
  ``Expect: 100-continue`` (curl does for large bodies) uploaded the whole body first:
  :class:`ContinueOnRead` sends it when the app reads the body, and the response to a
  request that was never told to continue closes the connection.
- gunicorn's gevent worker closes a connection without reading what is left of the body, and
  the kernel answers those bytes with a reset that drops the response the client had not read
  yet (``urllib`` posting 16 MB: ``ConnectionResetError`` instead of the 413): :func:`linger`.

:class:`serving.gateway.one_write.OneWriteResponse` uses both.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from serving.gateway.chunked import BoundedChunkedReader


class ContinueOnRead:
    """``wsgi.input`` of a request sent with ``Expect: 100-continue``: gunicorn's body, which
    sends ``100 Continue`` before the first read if no response has started (RFC 9110 section
    10.1.1: a server may answer with the final status instead, and then the client need not
    send the body). Once a response has started no ``100`` is sent, and the response closes
    the connection (:meth:`OneWriteResponse.should_close`): the body may or may not follow.
    """

    def __init__(self, body: Any, response: Any) -> None:
        """``body``: gunicorn's; ``response``: the gunicorn response answering the request
        (its ``headers_sent`` and ``sock``)."""
        self._body = body
        self._response = response
        self.continued = False

    def _continue(self) -> None:
        if not self.continued and not self._response.headers_sent:
            self._response.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.continued = True

    def read(self, size: int | None = None) -> bytes:
        """gunicorn's ``Body.read``, after the ``100 Continue``."""
        self._continue()
        data: bytes = self._body.read(size)
        return data

    def readline(self, size: int | None = None) -> bytes:
        """gunicorn's ``Body.readline``, after the ``100 Continue``."""
        self._continue()
        data: bytes = self._body.readline(size)
        return data

    def readlines(self, size: int | None = None) -> list[bytes]:
        """gunicorn's ``Body.readlines``, after the ``100 Continue``."""
        self._continue()
        lines: list[bytes] = self._body.readlines(size)
        return lines

    def __iter__(self) -> Any:
        self._continue()
        return iter(self._body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._body, name)  # reader, getsize, ...: gunicorn's body


# gunicorn's own lingering close (util.close_graceful, used by its gthread worker but not its
# gevent one) waits 2 s and reads at most 64 kB: a client sending a larger body still got a
# reset. A body over the limit is read off at up to this many bytes, within the same 2 s.
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024 * 1024


def body_left(request: Any) -> bool:
    """Whether gunicorn's ``request`` has body bytes its app did not read (by the state of
    gunicorn's body reader: a length left, a chunked parse not finished)."""
    reader = getattr(getattr(request, "body", None), "reader", None)
    if isinstance(reader, BoundedChunkedReader) and reader.refused:
        return True
    if getattr(reader, "length", 0):  # LengthReader: bytes left of Content-Length
        return True
    return getattr(reader, "parser", None) is not None  # ChunkedReader: chunks left


def linger(sock: Any) -> None:
    """Half-close ``sock`` and read off what the client still sends, until it closes, for at
    most ``LINGER_SECONDS`` and ``LINGER_MAX_BYTES`` (RFC 9112 section 9.6).

    A server that closes with unread request bytes in its socket makes the kernel answer
    them with a reset, and the client's kernel drops the response it had not read yet:
    ``urllib.request`` (which asks to close) posting 20 MB got ``ConnectionResetError``,
    not the 413. With the write side shut, the client reads the whole response and its
    end; what it sends meanwhile is read and dropped here. gunicorn closes ``sock`` after.
    """
    deadline = time.monotonic() + LINGER_SECONDS
    drained = 0
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        while drained < LINGER_MAX_BYTES:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                break
            drained += len(data)
