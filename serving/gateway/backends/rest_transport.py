"""Keep-alive HTTP/1.1 calls to one TF Serving REST endpoint, over the standard library's
``http.client``.

Why not ``requests``: a qa predict call cost the gateway worker 1.1-1.3 ms of CPU through a
``requests`` session (its session merge, hooks, adapter and urllib3's pool and response
wrappers) against 0.31-0.43 ms over ``http.client`` (the same body, JSON and arrays; process
CPU per call under gevent, ``loadtests/README.md`` round 15). Under the gevent worker the
sockets are gevent's, so a call waits in the event loop itself: no thread hand-off, unlike
grpcio's blocking calls (``serving.gateway.grpc_gevent``).

A connection is reused while the server keeps it open (HTTP/1.1 keep-alive; at most
``pool_size`` idle ones are kept). A reused connection the server closed while idle fails
before its answer starts; that call is sent once more on a new connection (predict, status
and metadata are idempotent), as urllib3 and browsers do, and is no retry of the policy's.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from serving.gateway.backends.base import seconds_left
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.pid import current_pid

# Most bytes one receive of an answer's body asks for.
BODY_CHUNK_BYTES = 1 << 16
# Failures of a reused idle connection before any answer: the server closed it meanwhile.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status code and whole body (bytes)."""

    status: int
    body: bytes


class Transport:
    """Calls to the scheme, host and port of ``base_url`` (``http`` or ``https``; its path
    prefixes every call's path)."""

    def __init__(self, base_url: str, connect_timeout_seconds: float, pool_size: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout_seconds
        self.pool_size = pool_size
        self._idle: deque[http.client.HTTPConnection] = deque()
        self._pid = current_pid()
        self._context = ssl.create_default_context() if self.https else None

    def call(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """Send one request and read its whole answer by ``deadline`` (``time.monotonic()``).

        Raises ``BackendError``: UNAVAILABLE (retryable) when no connection could be made or
        the connection broke before the answer; DEADLINE_EXCEEDED when a receive or the body
        outlasted the deadline; INTERNAL for an answer that is no HTTP/1.1 answer we read
        (cut short, badly chunked, a ``Content-Encoding``: identity is asked for)."""
        if self._pid != current_pid():
            # A forked child (a server that forks after the app is made): its parent's
            # connections would carry both processes' calls and answers. Its copies of
            # their descriptors are closed; the parent's connections stay open.
            self.close()
            self._pid = current_pid()
        reused = bool(self._idle)
        connection = self._idle.pop() if reused else self._connect(deadline)
        try:
            try:
                response = self._send(connection, method, path, body, headers, deadline)
            except _STALE:
                if not reused:
                    raise
                connection.close()  # closed by the server while idle: once on a new one
                connection = self._connect(deadline)
                response = self._send(connection, method, path, body, headers, deadline)
            content = _read_body(response, deadline)
        except BaseException as error:
            connection.close()
            mapped = _backend_error(error)
            if mapped is error:
                raise
            raise mapped from error
        if response.will_close or len(self._idle) >= self.pool_size:
            connection.close()
        else:
            self._idle.append(connection)
        return Answer(response.status, content)

    def close(self) -> None:
        """Close every idle connection (calls in flight close theirs when done)."""
        while self._idle:
            self._idle.pop().close()

    def _connect(self, deadline: float) -> http.client.HTTPConnection:
        timeout = min(self.connect_timeout, seconds_left(deadline))
        connection: http.client.HTTPConnection
        if self._context is not None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.connect()
        except OSError as error:  # refused, unreachable, no such host, connect timeout
            connection.close()
            raise BackendError(BackendFailure.UNAVAILABLE, repr(error), True) from error
        return connection

    def _send(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str],
        deadline: float,
    ) -> http.client.HTTPResponse:
        if connection.sock is None:
            connection.connect()
        connection.sock.settimeout(seconds_left(deadline))  # each send and receive: the time left
        connection.request(method, self.prefix + path, body, headers)
        return connection.getresponse()


def _read_body(response: http.client.HTTPResponse, deadline: float) -> bytes:
    """The answer's body, read by single receives (``read1``) until its end or the deadline.

    The socket timeout bounds each receive, not the body: a server that drips its answer a
    byte at a time kept a call (and its client) waiting as long as it dripped. Past the
    deadline by at most one receive, this raises DEADLINE_EXCEEDED."""
    encoding = response.getheader("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        raise BackendError(BackendFailure.INTERNAL, f"answer in Content-Encoding {encoding!r}")
    chunks = []
    while chunk := response.read1(BODY_CHUNK_BYTES):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise BackendError(BackendFailure.DEADLINE_EXCEEDED, "body outlasted the deadline")
    content = b"".join(chunks)
    if response.length:  # read1 ends quietly at a close before Content-Length's last byte
        raise http.client.IncompleteRead(content, response.length)
    response.close()  # the connection's next request needs its last answer closed
    return content


def _backend_error(error: BaseException) -> BaseException:
    """The ``BackendError`` a failed call raises (others, such as gevent's Timeout or a
    KeyboardInterrupt, pass unchanged)."""
    if isinstance(error, BackendError):
        return error
    if isinstance(error, (TimeoutError, socket.timeout)):
        return BackendError(BackendFailure.DEADLINE_EXCEEDED, repr(error))
    if isinstance(error, (ConnectionError, http.client.RemoteDisconnected)):
        # Reset or closed before an answer (RemoteDisconnected is a ConnectionResetError).
        return BackendError(BackendFailure.UNAVAILABLE, repr(error), True)
    if isinstance(error, (http.client.HTTPException, OSError, ValueError)):
        # Cut short (IncompleteRead), badly chunked, a status line or header that is no HTTP.
        return BackendError(BackendFailure.INTERNAL, repr(error))
    return error
