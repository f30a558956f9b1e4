"""A bound on the wait for a client's next bytes while its request is read (the workers').

gunicorn bounds some of a request's read and not the rest:

- gevent: the request line and headers are read inside gunicorn's ``keepalive`` timeout
  (``gevent.Timeout`` around ``next(parser)``, 5 s in ``gunicorn_conf.py``): a whole-header
  bound; a client past it is closed without an answer. The body, read by the app, had none: a
  ``Content-Length: 100`` with 10 bytes sent, or a chunk announcing 2^80 bytes and sending
  none, held the connection and its greenlet for good.
- gthread: only the wait for a new connection's first bytes (5 s, then the poller holds it)
  and the drain of an unread body are bounded; the headers and the body were read with a
  blocking socket without a timeout, so a client that stalled held one of the worker's few
  threads for good (4 such clients: a worker that answers nobody).

``GATEWAY_CLIENT_READ_TIMEOUT_SECONDS`` bounds each wait for the client's next bytes (nginx's
``client_body_timeout``: between two reads, not the whole upload, so a slow but steady upload
is answered). gevent: the socket's timeout, set while a request is handled (not while the
worker waits for the next request on a kept-alive connection, which gunicorn's keepalive
bounds: a timeout there would cost a timer per request). gthread: ``SO_RCVTIMEO``, set once
per connection (the worker's blocking socket reads then end in ``EAGAIN``); no system call
per request. A header block must also arrive whole within the setting (:class:`TimedRequest`;
gevent's keepalive bounds it already): a slowloris client sending a byte just under the read
timeout each time would otherwise hold a gthread thread for good. Either way the read that
waited too long raises :class:`ReadTimeout` from gunicorn's socket reader
(:class:`TimedSocketUnreader`): in the body the app answers 408 (``request_body.read_body``,
RFC 9110 section 15.5.9) and the connection closes; in the headers gunicorn closes the
connection (its ``NoMoreData``: nothing to answer yet).
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

from gunicorn.http import parser
from gunicorn.http.errors import NoMoreData
from gunicorn.http.unreader import SocketUnreader

from serving.gateway.host_header import HostCheckedRequest


class ReadTimeout(NoMoreData):  # type: ignore[misc]
    """The client sent nothing for ``seconds`` while its request was being read."""

    def __init__(self, seconds: float | None) -> None:
        super().__init__(b"")
        self.seconds = seconds

    def __str__(self) -> str:
        waited = "" if self.seconds is None else f" for {self.seconds:g} s"
        return f"the client sent nothing{waited} while its request was read"


class TimedSocketUnreader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader; a read that timed out raises :class:`ReadTimeout`."""

    def chunk(self, size_hint: int | None = None) -> bytes:
        """gunicorn's next read from the socket (at most ``size_hint`` bytes past its own
        chunk size). Raises ReadTimeout: the socket's timeout (gevent) or ``SO_RCVTIMEO``
        (gthread: ``BlockingIOError`` from a blocking socket) ran out."""
        try:
            data: bytes = super().chunk(size_hint)
        except (TimeoutError, BlockingIOError) as error:
            raise ReadTimeout(self.sock.gettimeout() or receive_timeout(self.sock)) from error
        return data


def receive_timeout(sock: Any) -> float | None:
    """``SO_RCVTIMEO`` of ``sock`` in seconds (None: none, or it cannot be read)."""
    try:
        seconds, micros = struct.unpack("ll", sock.getsockopt(*RCVTIMEO, TIMEVAL_SIZE))
    except (OSError, struct.error, AttributeError):
        return None
    return seconds + micros / 1e6 or None


RCVTIMEO = (socket.SOL_SOCKET, socket.SO_RCVTIMEO)
TIMEVAL_SIZE = struct.calcsize("ll")


def timeval(seconds: float) -> bytes:
    """``seconds`` as the ``struct timeval`` ``SO_RCVTIMEO`` takes (whole microseconds, at
    least one: a zero timeval means no timeout)."""
    micros = max(1, round(seconds * 1_000_000))
    return struct.pack("ll", micros // 1_000_000, micros % 1_000_000)


class TimedRequest(HostCheckedRequest):
    """gunicorn's request (``Host`` checked), whose header block must arrive within
    ``header_seconds`` of its second read: a slowloris client sending a byte of its headers
    just under the read timeout each time held a gthread thread for good (gevent's worker
    bounds the whole block with gunicorn's keepalive). A request whose headers come in one
    read, nearly all, pays nothing: the clock is read from the second read on.

    Raises ReadTimeout (gunicorn closes the connection, unanswered) from the read after the
    time is up: the header block ends at most ``header_seconds`` plus one read timeout after
    its first bytes.
    """

    header_seconds: float | None = None  # use_timed_socket_reads sets it
    _headers_since: float | None = None

    def read_into(self, unreader: Any, buf: bytearray, stop: bool = False) -> None:
        """gunicorn's read of more header bytes (``stop``: the request's first read)."""
        if not stop and self.header_seconds is not None:
            now = time.monotonic()
            if self._headers_since is None:
                self._headers_since = now
            elif now - self._headers_since > self.header_seconds:
                raise ReadTimeout(self.header_seconds)
        super().read_into(unreader, buf, stop)


def use_timed_socket_reads(header_seconds: float | None = None) -> None:
    """Make this process's gunicorn read requests with :class:`TimedSocketUnreader`
    (``gunicorn.http.parser.Parser`` builds its reader by this name) and parse them as
    :class:`TimedRequest` (whose header block must arrive within ``header_seconds``). Called
    in each gateway worker after the fork, after ``host_header.use_host_checked_requests``."""
    parser.SocketUnreader = TimedSocketUnreader
    TimedRequest.header_seconds = header_seconds
    parser.RequestParser.mesg_class = TimedRequest
