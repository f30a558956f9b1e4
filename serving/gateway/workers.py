"""gunicorn worker classes whose own error answers use the gateway's JSON error shape.

gunicorn refuses some requests before the app sees them (a NUL, CR or LF inside a header,
a header block over ``limit_request_field_size``, a malformed request line, a bad chunk
size) and answers them with a small HTML page (``gunicorn.util.write_error``). These
workers keep gunicorn's decision (status and reason) and send the body as
``{"error": "<reason>", "detail": []}`` instead. gunicorn exposes no hook for that body, so
the worker lets gunicorn write its answer into a buffer and re-emits it as JSON; the raw
client input that gunicorn quotes in its HTML is not echoed (it goes to gunicorn's log).

``GATEWAY_WORKER_CLASS=gevent`` (the default) -> :class:`GeventWorker`: an event loop per
worker, so slow clients hold a cheap greenlet each, not one of a few threads.
``gthread`` -> :class:`ThreadWorker`.
"""

from __future__ import annotations

import contextlib
import json
import socket
from typing import Any

from gunicorn.workers.ggevent import GeventWorker as _GeventWorker
from gunicorn.workers.gthread import ThreadWorker as _ThreadWorker


class _CapturingSocket:
    """Stands in for the client socket while gunicorn writes its error page."""

    def __init__(self, real: socket.socket) -> None:
        self._real = real
        self.written = bytearray()

    def sendall(self, data: bytes) -> None:
        self.written.extend(data)

    def send(self, data: bytes) -> int:
        self.written.extend(data)
        return len(data)

    def gettimeout(self) -> float | None:
        return 0.0  # write_nonblock then writes straight away, without setblocking

    def setblocking(self, flag: bool) -> None:
        """Nothing to do: the buffer never blocks."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def json_error_response(status_line: bytes) -> bytes:
    """A complete HTTP/1.1 response in the gateway's error shape for gunicorn's status line.

    ``status_line`` is ``b"HTTP/1.1 431 Request Header Fields Too Large"``: the status and
    reason gunicorn chose are kept; the connection is closed, as gunicorn does.
    """
    parts = status_line.decode("latin-1").split(" ", 2)
    status = parts[1] if len(parts) > 1 and parts[1].isascii() and parts[1].isdigit() else "400"
    reason = parts[2].strip() if len(parts) > 2 else "Bad Request"
    body = json.dumps({"error": reason, "detail": []}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _JsonErrors:
    """Mixin: gunicorn's own error answers in JSON."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        capture = _CapturingSocket(client)
        super().handle_error(req, capture, addr, exc)  # type: ignore[misc]
        if not capture.written:
            return
        status_line = bytes(capture.written).split(b"\r\n", 1)[0]
        with contextlib.suppress(OSError):  # a client that is gone needs no answer
            client.sendall(json_error_response(status_line))


class GeventWorker(_JsonErrors, _GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with JSON error answers."""


class ThreadWorker(_JsonErrors, _ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker with JSON error answers."""
