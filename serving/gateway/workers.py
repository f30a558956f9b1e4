"""gunicorn worker classes whose own error answers use the gateway's JSON error shape.

gunicorn refuses some requests before the app sees them (a NUL, CR or LF inside a header,
a header block over ``limit_request_field_size``, a malformed request line, a bad chunk
size) and answers them with a small HTML page (``gunicorn.util.write_error``). These
workers keep gunicorn's decision (status and reason) and send the body as
``{"error": "<reason>", "detail": [{"msg": "<what was refused>"}]}`` instead. gunicorn
exposes no hook for that body, so the worker lets gunicorn write its answer into a buffer
and re-emits it as JSON. The ``msg`` is gunicorn's own text for a client error (``Invalid
HTTP Header: 'CONTENT-LENGTH'``), echoed like any client text (``errors.echo``: cut, escaped):
a bare "Bad Request" did not say which header or line was refused.

``GATEWAY_WORKER_CLASS=gevent`` (the default) -> :class:`GeventWorker`: an event loop per
worker, so slow clients hold a cheap greenlet each, not one of a few threads.
``gthread`` -> :class:`ThreadWorker`.

Both write a response whose body comes in one piece (every JSON answer) with one ``sendall``
of headers and body (:mod:`serving.gateway.one_write`).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from gunicorn.config import Config
from gunicorn.http.errors import (
    ConfigurationProblem,
    InvalidHeader,
    InvalidHeaderName,
    UnsupportedTransferCoding,
)
from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker

from serving.gateway.chunked import use_bounded_chunked_bodies
from serving.gateway.errors import echo
from serving.gateway.exchange import CLIENT_CLOSED, UNMATCHED, begin, elapsed, end, record
from serving.gateway.grpc_gevent import CallPool, init_grpc_gevent
from serving.gateway.host_header import use_host_checked_requests
from serving.gateway.one_write import CapturingSocket, use_one_write_responses
from serving.gateway.read_timeout import RCVTIMEO, timeval, use_timed_socket_reads
from serving.gateway.settings import GatewaySettings


def refused_status(status_line: bytes) -> tuple[int, str]:
    """The status and reason of gunicorn's ``b"HTTP/1.1 431 Request Header Fields Too Large"``
    (400 Bad Request if the line cannot be read)."""
    parts = status_line.decode("latin-1").split(" ", 2)
    status = parts[1] if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() else "400"
    reason = parts[2].strip() if len(parts) > 2 else "Bad Request"
    return int(status), reason


def json_error_response(
    status_line: bytes, refused: BaseException | None = None, request_id: str = ""
) -> bytes:
    """A complete HTTP/1.1 response in the gateway's error shape for gunicorn's status line.

    ``status_line`` is ``b"HTTP/1.1 431 Request Header Fields Too Large"``: the status and
    reason gunicorn chose are kept; the connection is closed, as gunicorn does. For a 4xx,
    ``refused`` (gunicorn's parser error) gives the detail's ``msg``, echoed cut and escaped;
    a 5xx says nothing of its exception. ``request_id`` (the access line's) is sent as
    ``X-Request-ID``, as on every answer of the app (``exchange.request_id_from``: printable
    ASCII, so it cannot break the header block).
    """
    status, reason = refused_status(status_line)
    said = str(refused) if refused is not None and 400 <= status < 500 else ""
    detail = [{"msg": echo(said)}] if said else []
    body = json.dumps({"error": reason, "detail": detail}).encode()
    request_id_line = f"X-Request-ID: {request_id}\r\n" if request_id else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"{request_id_line}\r\n"
    )
    return head.encode("latin-1") + body


def resolve_settings(cfg: Config) -> None:
    """Store each gunicorn setting's value on ``cfg`` itself, read as ``cfg.name`` from then on.

    ``Config`` keeps settings in a dict behind ``__getattr__``: each of the ~24 reads per
    request (parser limits, forwarding rules, hooks) first fails a normal attribute lookup
    (an ``AttributeError`` built and dropped), then runs two Python functions. A worker's
    settings do not change after the fork (a reload starts new workers), so their values are
    put where a normal lookup finds them. Settings that ``Config`` serves through a property
    (``worker_class``, ``sendfile``, ...) keep their property: a property wins over an
    instance attribute.
    """
    for name, setting in cfg.settings.items():
        vars(cfg)[name] = setting.get()  # Config.__setattr__ refuses setting names


# Client errors gunicorn answers with a server error's code (its refusals of a client's
# request, filed as such: their reason phrase is "Bad Request"), and the status the gateway
# gives them; a 5xx raises an operator's alert and says nothing of what was refused.
# - A path outside ``SCRIPT_NAME`` (500): ``SCRIPT_NAME`` comes from a header a trusted
#   forwarder passed on (``forwarder_headers``; any client on 127.0.0.1 with the default
#   ``forwarded_allow_ips``) or from the environment, and the path is the client's: 400.
# - A transfer coding gunicorn does not know (501, RFC 9112 section 6.1's SHOULD): a coding it
#   knows but the gateway does not take (``gzip``) is the app's 415 (request_body.py), and an
#   unknown one is refused alike.
CLIENT_ERROR_STATUS: tuple[tuple[type[Exception], bytes], ...] = (
    (ConfigurationProblem, b"HTTP/1.1 400 Bad Request"),
    (UnsupportedTransferCoding, b"HTTP/1.1 415 Unsupported Media Type"),
)


def _refused_environ(req: Any) -> dict[str, str]:
    """The ``X-Request-ID`` of a request gunicorn refused, if its headers were read (joined
    by commas when given twice, as WSGI hands them to the app)."""
    given = [
        str(value)
        for name, value in getattr(req, "headers", None) or ()
        if name == "X-REQUEST-ID"  # gunicorn's parser upper-cases header names
    ]
    return {"HTTP_X_REQUEST_ID": ",".join(given)} if given else {}


def without_header_value(refused: BaseException) -> None:
    """Cut a refused header line that holds whitespace to its first word, in place, before
    gunicorn logs it and echoes it (its WARNING ``Invalid request from ip=...: ...``).

    gunicorn refuses a header line without a colon (or whose name is no token) and names it
    whole: ``Authorization Bearer sk-...`` (a colon forgotten in ``curl -H``) put the
    client's key in the gateway's logs. A header name is a token (RFC 9110 section 5.1), so
    the first whitespace starts what may be a value; the name alone says what was refused.
    """
    line = getattr(refused, "hdr", None)
    if isinstance(refused, (InvalidHeader, InvalidHeaderName)) and isinstance(line, str):
        words = line.split(maxsplit=1)
        if len(words) > 1:
            refused.hdr = f"{words[0]} ..."


class _GatewayWorker:
    """Mixin: gunicorn's own error answers in JSON, one write per response."""

    wsgi: Any  # gunicorn's: the app (serving.gateway.app.create_app's Flask app)
    # GATEWAY_CLIENT_READ_TIMEOUT_SECONDS (serving.gateway.read_timeout), read in init_process
    client_read_timeout: float = 30.0
    # The worker's settings, read once in init_process (the app reads its own in create_app:
    # gunicorn builds it from the app URI, which passes none)
    gateway_settings: GatewaySettings

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer to a request it refused (or an error outside the app) in JSON,
        with a request id, counted and written as an access line like the app's answers
        (they had neither: an operator's 4xx rate missed every refusal)."""
        if req is None and isinstance(exc, (InvalidHeader, InvalidHeaderName)):
            req = getattr(exc, "req", None)  # a bad header's request, as gunicorn finds it
        exchange, tokens = begin(_refused_environ(req))  # gunicorn's warning gets the id too
        without_header_value(exc)
        try:
            capture = CapturingSocket(client)
            super().handle_error(req, capture, addr, exc)  # type: ignore[misc]
            if not capture.written:
                return
            status_line = bytes(capture.written).split(b"\r\n", 1)[0]
            for refused, client_status in CLIENT_ERROR_STATUS:
                if isinstance(exc, refused):
                    status_line = client_status
            status, seconds = refused_status(status_line)[0], elapsed(exchange)
            try:
                client.sendall(json_error_response(status_line, exc, exchange.request_id))
            except OSError:  # a client that is gone needs no answer; it counts as gone
                status = CLIENT_CLOSED
            # Counted and logged once sent, as the app's answers are (exchange.delivered).
            services = getattr(getattr(self, "wsgi", None), "extensions", {}).get("gateway")
            if services is not None:
                method = str(getattr(req, "method", "") or "")
                path = str(getattr(req, "path", "") or "")
                record(services.metrics, exchange, UNMATCHED, method, path, status, seconds)
        finally:
            end(tokens)

    def init_process(self) -> None:
        """Answer with one write per response (see the module docstring), bound the chunks
        of a chunked body (:mod:`serving.gateway.chunked`), check ``Host``
        (:mod:`serving.gateway.host_header`), bound the wait for a request's bytes
        (:mod:`serving.gateway.read_timeout`), then serve."""
        settings = self.gateway_settings = GatewaySettings()
        use_one_write_responses()
        use_bounded_chunked_bodies(settings.max_body_bytes)
        use_host_checked_requests()
        use_timed_socket_reads(settings.client_read_timeout_seconds)
        self.client_read_timeout = settings.client_read_timeout_seconds
        resolve_settings(self.cfg)  # type: ignore[attr-defined]
        super().init_process()  # type: ignore[misc]


class GeventWorker(_GatewayWorker, _GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with JSON error answers, one-write responses and gRPC calls
    that yield to the hub."""

    grpc_call_pool: CallPool | None = None

    def load_wsgi(self) -> None:
        """Turn grpcio's gevent mode on, then build the app (before any gRPC channel exists).

        gunicorn calls this after gevent patched the process and re-initialised the hub, so
        the call pool's watcher lives on the worker's own loop. Without grpcio's gevent mode a
        Predict call would block every greenlet of the worker.
        """
        use_pool = self.gateway_settings.grpc_call_pool
        self.grpc_call_pool = init_grpc_gevent(call_pool=use_pool)
        super().load_wsgi()

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> bool:
        """gunicorn's handling of one request whose headers are read, each wait for the
        client's bytes (its body, the answer's write) bounded by ``client_read_timeout``.

        The socket's timeout is gevent's own (no system call, and a timer only for a read
        that has to wait); it is taken off again before the worker waits for the next
        request, which gunicorn's keepalive bounds: left on, each such wait would start a
        timer of its own. It is stored in gevent's ``timeout`` slot, which ``settimeout``
        sets after checking its argument: 5,600 instructions per request for the two calls
        (2.4 M per qa request), against ~50 (tests/unit/gateway/test_read_timeout.py checks
        that the slot is the socket's timeout). A write that timed out (a client that reads
        no answer; the app's access line counted it as gone, 499) closes the connection
        quietly, as a reset does, instead of gunicorn's error log with its traceback.
        """
        sock.timeout = self.client_read_timeout
        try:
            return bool(super().handle_request(listener_name, req, sock, addr))
        except TimeoutError:
            raise StopIteration() from None
        finally:
            sock.timeout = None


class ThreadWorker(_GatewayWorker, _ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker with JSON error answers and one-write responses."""

    def handle(self, conn: Any) -> Any:
        """gunicorn's handling of a connection's next request; a new connection's socket
        first gets ``SO_RCVTIMEO`` (``client_read_timeout``): the thread's blocking reads of
        headers and body then end after that long without a byte
        (:mod:`serving.gateway.read_timeout`). One system call per connection, none per
        request; it outlasts gunicorn's switches between blocking and non-blocking."""
        if not conn.initialized:
            with contextlib.suppress(OSError):  # a client gone already: gunicorn sees it
                conn.sock.setsockopt(*RCVTIMEO, timeval(self.client_read_timeout))
        return super().handle(conn)
