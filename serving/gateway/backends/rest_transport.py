"""Keep-alive HTTP/1.1 calls to one TF Serving REST endpoint, over the standard library's
``http.client``.

Why not ``requests``: a qa predict call cost the gateway worker 1.1-1.3 ms of CPU through a
``requests`` session (its session merge, hooks, adapter and urllib3's pool and response
wrappers) against 0.31-0.43 ms over ``http.client`` (the same body, JSON and arrays; process
CPU per call under gevent, ``loadtests/README.md`` round 15). Under the gevent worker the
sockets are gevent's, so a call waits in the event loop itself: no thread hand-off, unlike
grpcio's blocking calls (``serving.gateway.grpc_gevent``).

A connection is reused while the server keeps it open (HTTP/1.1 keep-alive; at most
``pool_size`` idle ones are kept). At most ``max_connections`` calls are in flight at once (so
as many sockets): a gevent worker runs up to ``worker_connections`` (1000) requests at once,
and coalescing bounds only the calls of one model version that still hold others back (5 ms),
not large requests, merging off, other versions or status polls, so a burst opened a socket
per request to the model server. A call beyond the cap waits for a free one until its
deadline, then fails UNAVAILABLE (a 503 with Retry-After; no retry: its deadline is spent).

A reused connection the server closed while idle fails before its answer starts; that call
is sent once more on a new connection (predict, status and metadata are idempotent), as
urllib3 and browsers do, and is no retry of the policy's.

A connection goes back to the pool only after an answer framed exactly (its end known, no
coding); before its next use it must hold no byte: bytes a server sent past an answer's end
(a second answer to one request, a 204's body) were read as the next call's answer, another
request's answer given to this one. Interim answers (1xx) are skipped (``http.client`` skips
only 100: a 103 Early Hints was taken as the answer, the real one left on the connection).
An answer's body is at most ``max_answer_bytes`` (the gRPC backend's receive limit).
"""

from __future__ import annotations

import base64
import functools
import http.client
import re
import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from serving.gateway.backends.base import seconds_left
from serving.gateway.backends.rest_answer import DeadlineResponse, has_bytes, read_body
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.pid import current_pid
from serving.redaction import redact_url

# A host as RFC 3986 section 3.2.2 spells it (reg-name or IP literal, as urlsplit gives it:
# brackets off, lower case): unreserved, percent-encoded and sub-delims characters, ":" of IPv6.
_HOST = re.compile(r"[a-z0-9._~%!$&'()*+,;=:-]+")
# Failures of a reused idle connection before any answer: the server closed it meanwhile.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: its status code and whole body (bytes)."""

    status: int
    body: bytes


def base_url_parts(base_url: str) -> SplitResult:
    """``base_url`` split; ValueError unless it is an ``http(s)`` URL with a host of RFC 3986
    host characters (no blank: ``bad host`` was accepted, then failed every call), a valid
    port and no query or fragment (checked with the settings: the gateway does not start).
    The messages show the URL with its password masked (:func:`redact_url`)."""
    shown = redact_url(base_url)
    try:
        parts = urlsplit(base_url)
        _ = parts.port  # ValueError for a port that is no number or past 65535
    except ValueError as error:  # urlsplit's messages are safe (no userinfo): given as they are
        raise ValueError(f"{error}: {shown!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {shown!r}")
    if not _HOST.fullmatch(parts.hostname):
        raise ValueError(f"not a host name or address: {redact_url(parts.hostname)!r}")
    if parts.query or parts.fragment or base_url.endswith(("?", "#")):
        # A query would be sent inside every call's path ("/?a=1/v1/models/...").
        raise ValueError(f"a query or fragment in the base URL: {shown!r}")
    return parts


class Transport:
    """Calls to the scheme, host and port of ``base_url`` (``http`` or ``https``; its path
    prefixes every call's path; ``user:password@`` is sent as Basic auth). An answer's body
    is at most ``max_answer_bytes``."""

    def __init__(
        self,
        base_url: str,
        connect_timeout_seconds: float,
        pool_size: int,
        max_answer_bytes: int = 64 * 1024 * 1024,
        max_connections: int = 64,
    ) -> None:
        parts = base_url_parts(base_url)
        self.https = parts.scheme == "https"
        self.host: str = parts.hostname or ""  # never empty: base_url_parts checks it
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.connect_timeout = connect_timeout_seconds
        self.pool_size = min(pool_size, max_connections)
        self.max_answer_bytes = max_answer_bytes
        self.max_connections = max_connections
        # threading's semaphore is gevent's in a gevent worker (gunicorn patches threading).
        self._slots = threading.BoundedSemaphore(max_connections)
        # user:password in the URL is Basic auth, as requests (the transport before) sent it.
        self.auth: dict[str, str] = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.auth["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        self._idle: deque[http.client.HTTPConnection] = deque()
        # Counts close() calls: a call that started before one closes its connection when done
        # (it was pooled again, left open until the gc found it).
        self._closings = 0
        # The pool's process: a child forked from it opens its own connections (a socket two
        # processes read would hand each of them pieces of the other's answers).
        self._pid = current_pid()
        self._context = ssl.create_default_context() if self.https else None

    def call(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """Send one request and read its whole answer by ``deadline`` (``time.monotonic()``).

        Raises ``BackendError``: UNAVAILABLE (retryable) when no connection could be made or
        the connection broke before the answer; DEADLINE_EXCEEDED when a receive or the body
        outlasted the deadline; INTERNAL for an answer that is no HTTP/1.1 answer we read
        (cut short, badly chunked, a coding: identity is asked for; a 101; two lengths) or
        whose body is past ``max_answer_bytes``."""
        headers = {**headers, **self.auth} if self.auth else headers
        if self._pid != current_pid():
            self._forked()
        if not self._slots.acquire(timeout=seconds_left(deadline)):
            raise BackendError(
                BackendFailure.UNAVAILABLE,
                f"all {self.max_connections} connections to the model server stayed busy "
                "until the call's deadline",
                True,
            )
        try:
            return self._call(method, path, body, headers, deadline)
        finally:
            self._slots.release()

    def _call(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str], deadline: float
    ) -> Answer:
        """:meth:`call` once it holds one of the ``max_connections`` slots."""
        closings = self._closings
        connection = self._pooled()
        reused = connection is not None
        if connection is None:
            connection = self._connect(deadline)
        try:
            try:
                response = self._send(connection, method, path, body, headers, deadline)
            except _STALE:
                if not reused:
                    raise
                connection.close()  # closed by the server while idle: once on a new one
                connection = self._connect(deadline)
                response = self._send(connection, method, path, body, headers, deadline)
            content, reusable = read_body(response, self.max_answer_bytes)
        except BaseException as error:
            connection.close()
            mapped = _backend_error(error)
            if mapped is error:
                raise
            raise mapped from error
        if not reusable or len(self._idle) >= self.pool_size or closings != self._closings:
            connection.close()
        else:
            self._idle.append(connection)
        return Answer(response.status, content)

    def close(self) -> None:
        """Close every idle connection (calls in flight close theirs when done); a later call
        opens a new one."""
        self._closings += 1
        while self._idle:
            self._idle.pop().close()

    def _forked(self) -> None:
        """In a forked child: its copies of the parent's descriptors are closed (the parent's
        connections stay open; it never sends on them), and its slots are all free (the
        parent's calls in flight at the fork are not the child's)."""
        self.close()
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._pid = current_pid()

    def _pooled(self) -> http.client.HTTPConnection | None:
        """An idle connection that holds no byte, or None (those that do are closed)."""
        while True:
            try:
                connection = self._idle.pop()  # no check first: another thread may take it
            except IndexError:
                return None
            if not has_bytes(connection.sock):
                return connection
            connection.close()  # closed by the server, or bytes past the last answer

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
        connection.sock.settimeout(seconds_left(deadline))  # each send: the time left
        # Each receive of the answer, its head too, gets the time left (DeadlineResponse).
        connection.response_class = functools.partial(  # type: ignore[assignment]
            DeadlineResponse, deadline=deadline
        )
        connection.request(method, self.prefix + path, body, headers)
        return connection.getresponse()


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
