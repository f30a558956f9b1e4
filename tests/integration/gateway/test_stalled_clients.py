"""Clients that stall while sending their request, under real gunicorn (both worker classes).

A body that never arrived (``Content-Length: 100`` with 10 bytes sent, a chunk announcing
2^80 bytes) held its connection and its greenlet or thread with no bound: still unanswered
after 200 s. The shared stack runs with ``GATEWAY_CLIENT_READ_TIMEOUT_SECONDS=2``
(conftest.py); every wait here is bounded by the client socket's own timeout.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from serving.gateway.launcher import RunningGateway
from tests.support.raw_http import parse_answer, read_to_close

pytestmark = pytest.mark.slow
QA = json.dumps({"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}).encode()
# Far past the stack's 2 s read timeout and gunicorn's 5 s keepalive: a gateway that does not
# bound the read leaves the test failing on this client-side timeout, not hanging.
CLIENT_WAIT = 30.0


@pytest.fixture
def gateway(class_gateway: RunningGateway) -> RunningGateway:
    """Each worker class's stack, shared with the other modules (conftest.py)."""
    return class_gateway


def _connect(gateway: RunningGateway) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=CLIENT_WAIT)


def _head(framing: bytes, request_id: str) -> bytes:
    return (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: " + request_id.encode() + b"\r\n" + framing + b"\r\n"
    )


def _stalled(gateway: RunningGateway, sent: bytes) -> bytes:
    """Send ``sent``, then nothing (the connection stays open): all the gateway answers
    until it closes."""
    with _connect(gateway) as connection:
        connection.sendall(sent)
        return read_to_close(connection)


def _access_statuses(gateway: RunningGateway, request_id: str) -> list[int]:
    """The statuses of ``request_id``'s access lines, once one is written (bounded wait: a
    worker holds its lines up to GATEWAY_ACCESS_LOG_FLUSH_SECONDS)."""
    deadline = time.monotonic() + 15
    while True:
        entries = [json.loads(line) for line in gateway.log_text().splitlines() if line]
        statuses = [
            entry["status"]
            for entry in entries
            if entry.get("logger") == "serving.gateway.access"
            and entry.get("request_id") == request_id
        ]
        if statuses or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)


def _json_error(received: bytes, status: int) -> dict[str, Any]:
    code, headers, body = parse_answer(received)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    payload: dict[str, Any] = json.loads(body)
    assert set(payload) == {"error", "detail"}
    return payload


@pytest.mark.parametrize(
    ("framing", "sent"),
    [
        (b"Content-Length: 100\r\n", b'{"article"'),  # 10 of 100 bytes, then nothing
        (b"Transfer-Encoding: chunked\r\n", b'a\r\n{"ar'),  # a chunk cut short
        (b"Transfer-Encoding: chunked\r\n", b""),  # not even a chunk size line
    ],
)
def test_a_stalled_body_is_408_and_closed(
    gateway: RunningGateway, framing: bytes, sent: bytes
) -> None:
    request_id = f"stalled-body-{time.monotonic_ns()}"
    received = _stalled(gateway, _head(framing, request_id) + sent)
    payload = _json_error(received, 408)
    assert "in time" in payload["error"]
    assert _access_statuses(gateway, request_id) == [408]


def test_a_chunk_announced_past_the_limit_is_413_at_once(gateway: RunningGateway) -> None:
    # 2^80 bytes announced and none sent: refused from the size line, not waited for.
    request_id = f"huge-chunk-{time.monotonic_ns()}"
    framing = b"Transfer-Encoding: chunked\r\n"
    received = _stalled(gateway, _head(framing, request_id) + b"%x\r\n" % 2**80)
    payload = _json_error(received, 413)
    assert "max_body_bytes" in payload["error"]
    assert _access_statuses(gateway, request_id) == [413]


@pytest.mark.parametrize(
    "sent",
    [b"POST /v1/qa HTTP/1.1\r\nHo", b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"],
)
def test_stalled_headers_are_closed(gateway: RunningGateway, sent: bytes) -> None:
    # gevent: gunicorn's keepalive (5 s) bounds the whole header block; gthread: the read
    # timeout. Nothing can be answered yet: the connection is closed.
    assert _stalled(gateway, sent) == b""


def test_trickled_headers_are_closed(gateway: RunningGateway) -> None:
    # Slowloris: a byte every 0.25 s, each under the 2 s read timeout. gthread held the thread
    # for good (its headers had no whole bound); the header block must now arrive within the
    # setting (gevent: gunicorn's keepalive, 5 s). Sent whole (15 s), it would be answered.
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 30 + b"\r\n\r\n"
    received = b""
    with _connect(gateway) as connection:
        try:
            for byte in range(len(request)):
                connection.sendall(request[byte : byte + 1])
                time.sleep(0.25)
            received = read_to_close(connection)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the gateway: a send after its close is reset
    assert received == b""


def test_a_slow_but_steady_upload_is_answered(gateway: RunningGateway) -> None:
    # Each wait under the 2 s bound, the whole upload past it: answered, as nginx's
    # client_body_timeout (between two reads) would.
    head = _head(b"Content-Length: %d\r\nConnection: close\r\n" % len(QA), "steady")
    with _connect(gateway) as connection:
        connection.sendall(head)
        for start in range(0, len(QA), len(QA) // 4 + 1):
            time.sleep(0.8)
            connection.sendall(QA[start : start + len(QA) // 4 + 1])
        code, _, body = parse_answer(read_to_close(connection))
    assert code == 200, body
