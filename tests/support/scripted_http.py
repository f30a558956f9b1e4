"""A real socket server that answers each HTTP/1.1 request as a test scripts it, and a fixture
starting such servers (closed at the test's end): the REST backend's transport tests use them
(tests/unit/gateway/test_rest_transport*.py)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from serving.gateway.backends.rest_transport import Transport

BOUND = 30.0  # seconds: a bound on waits, never a measured figure
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Script = Callable[[socket.socket, bytes], bool]  # answer one request; False: close


class Scripted:
    """A server whose every request is answered by ``script``; it counts connections and
    records each request's bytes."""

    def __init__(self, script: Script, host: str = "127.0.0.1") -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.listener = socket.create_server((host, 0), family=family)
        netloc = f"[{host}]" if ":" in host else host
        self.url = f"http://{netloc}:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        # A reset: the client closed a connection holding bytes it had not read.
        with contextlib.suppress(ConnectionError):
            self._answer_each(connection)

    def _answer_each(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            connection.settimeout(BOUND)
            while head := _read_head(reader):
                sizes = [line for line in head if line.lower().startswith(b"content-length")]
                length = int(sizes[0].split(b":")[1]) if sizes else 0
                request = b"".join(head) + reader.read(length)
                self.requests.append(request)
                if not self.script(connection, request):
                    return


def _read_head(reader: object) -> list[bytes]:
    lines = []
    while (line := reader.readline()) not in (b"\r\n", b""):  # type: ignore[attr-defined]
        lines.append(line)
    return lines


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Scripted]]:
    """Start :class:`Scripted` servers (``serve(script)``); their listeners close at the end."""
    started: list[Scripted] = []

    def start(script: Script) -> Scripted:
        started.append(Scripted(script))
        return started[-1]

    yield start
    for server in started:
        server.listener.close()


def answer(raw: bytes, keep: bool = True) -> Script:
    """A script sending ``raw`` to every request; ``keep=False`` closes after it."""

    def script(connection: socket.socket, request: bytes) -> bool:
        connection.sendall(raw)
        return keep

    return script


def deadline(seconds: float = BOUND) -> float:
    """A ``time.monotonic`` deadline ``seconds`` from now."""
    return time.monotonic() + seconds


def call(transport: Transport, seconds: float = BOUND) -> tuple[int, bytes]:
    """Status and body of one ``POST /v1/models/m:predict`` through ``transport``."""
    reply = transport.call("POST", "/v1/models/m:predict", b"{}", {}, deadline(seconds))
    return reply.status, reply.body
