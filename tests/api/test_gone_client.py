"""An answer that cannot be written because the client reset the connection while the gateway
waited for the model server is counted and logged as 499 (nginx's "client closed request"),
not as the status it would have had: the gateway's app behind a real HTTP server (werkzeug's),
real sockets, a real gRPC relay in front of the model server holding the request's Predict."""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest
from flask import Flask
from werkzeug.serving import make_server

from serving.gateway.logs import LOGGER_NAME
from tests.support.grpc_servers import Forward, relay
from tests.support.model_server import ModelServerHandle

BOUND = 30.0  # seconds: a bound on waits, never a measured figure
GONE = "gone-client"  # the request id of the request whose client goes away
QA = {"article": "Mary moved to the bathroom. John went to the hallway.", "question": "Where?"}


@contextmanager
def _served(app: Flask) -> Iterator[tuple[str, int]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join(BOUND)
        server.server_close()


def _access_line(log: io.StringIO) -> dict[str, object]:
    """The access line of the request :data:`GONE`, once written (bounded wait: the server's
    thread writes it after its write to the client failed)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        for text in log.getvalue().splitlines():
            line = json.loads(text)
            if line["logger"] == f"{LOGGER_NAME}.access" and line.get("request_id") == GONE:
                return dict(line)
        time.sleep(0.01)
    raise AssertionError("no access line for the request")


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "flask"])
@pytest.mark.parametrize("path", ["/v1/qa", "/v1/models/qa:predict"])
def test_an_answer_the_client_reset_before_is_499(
    app_factory, model_server: ModelServerHandle, gateway_log, fast_path: bool, path: str
) -> None:
    asked, release = threading.Event(), threading.Event()

    def hold(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
        if method == "Predict" and dict(context.invocation_metadata()).get("x-request-id") == GONE:
            asked.set()
            release.wait(BOUND)
        return forward(request)

    with relay(model_server.grpc_target, hold, max_workers=4) as target:
        app = app_factory(target, log_level="INFO", fast_path=fast_path)
        with _served(app) as address:
            body = json.dumps({"inputs": QA} if "models" in path else QA).encode()
            client = socket.create_connection(address, timeout=BOUND)
            client.sendall(
                b"POST %s HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
                b"X-Request-ID: %s\r\nContent-Length: %d\r\n\r\n%s"
                % (path.encode(), GONE.encode(), len(body), body)
            )
            try:
                assert asked.wait(BOUND)  # the gateway waits for the model server
                # Closed with a reset (SO_LINGER 0): the gateway's write of the answer fails.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            finally:
                release.set()
            access = _access_line(gateway_log)
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert access["status"] == 499 and access["path"] == path and access["model"] == "qa"
    counted = re.findall(r"^gateway_requests_total\{([^}]*)\} ([0-9.]+)$", metrics, re.MULTILINE)
    statuses = [
        re.search(r'status="(\d+)"', labels) for labels, _ in counted if 'model="qa"' in labels
    ]
    assert [found.group(1) for found in statuses if found] == ["499"], metrics
