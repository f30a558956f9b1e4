"""The benchmarks' HTTP client closes its connections when a measurement ends."""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loadtests.bench_cells import fixed_http, measure


class Answer(BaseHTTPRequestHandler):
    """200 ``{}`` to every POST, over keep-alive connections."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def unclosed_sockets(run: Callable[[], object]) -> list[str]:
    """The ResourceWarnings about sockets while ``run`` runs and a gc after it."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        run()
        gc.collect()
    return [str(item.message) for item in caught if "socket" in str(item.message)]


def test_measure_closes_the_connections_of_its_threads(server_url: str) -> None:
    # Each thread's keep-alive connection was left to the garbage collector: "unclosed
    # <socket.socket ... raddr=('127.0.0.1', port)>" once its thread was gone.
    call = fixed_http(server_url, "qa", b"{}")
    assert unclosed_sockets(lambda: measure(call, 2, 6, list, list)) == []
    assert measure(call, 2, 4, list, list).requests == 4  # a later cell opens its own
