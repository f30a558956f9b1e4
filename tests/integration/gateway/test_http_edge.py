"""The HTTP edge under real gunicorn: gunicorn's own refusals in JSON, slow clients.

gunicorn answers some malformed requests before the app runs; the gateway's worker classes
turn those answers into the ``{"error", "detail"}`` shape. Slow clients (a partial request,
then one byte now and then) must not starve normal requests (issue: 8 of them held every
gthread thread).
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest
import requests

from loadtests.slow_clients import slow_connections
from serving.chunk_counts import FREE_CHUNKS
from serving.gateway.launcher import RunningGateway
from tests.support.raw_http import parse_answer, read_to_close, send_raw

pytestmark = pytest.mark.slow
QA = {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}


def _raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    return parse_answer(send_raw(url, request))


@pytest.fixture
def gateway(class_gateway: RunningGateway) -> RunningGateway:
    """Each worker class's stack, shared with the other modules (conftest.py)."""
    return class_gateway


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (b"X-Bad: a\x00b", 400),  # NUL inside a header value
        (b"X-Bad: a\rb", 400),  # a bare CR inside a header value
        (b"X-Big: " + b"a" * 10_000, 431),  # over limit_request_field_size (8190)
        (b"Bad Name: x", 400),  # a space in a header name
        (b"Content-Length: 0\r\nContent-Length: 0", 400),  # given twice
        (b"Content-Length: -1", 400),
        (b"Expect: 200-ok", 417),
    ],
)
def test_gunicorn_refusals_are_json(gateway: RunningGateway, header: bytes, status: int) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\n"
    code, headers, body = _raw(gateway.url, request)
    assert code == status
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert set(payload) == {"error", "detail"} and payload["error"]
    assert b"<html" not in body
    # What was refused (the detail was empty: 'Bad Request' named no header), by the name's
    # first word only: after a blank may come a value (workers.without_header_value).
    (detail,) = payload["detail"]
    name = header.split(b":")[0].split()[0].decode("latin-1").upper()
    assert detail["msg"] and (status == 431 or name in detail["msg"].upper())


def test_a_malformed_request_line_is_json(gateway: RunningGateway) -> None:
    code, headers, body = _raw(gateway.url, b"GET /healthz HTTP/9.9\r\n\r\n")
    assert code == 400 and headers["content-type"] == "application/json"
    assert set(json.loads(body)) == {"error", "detail"}


def test_slow_clients_leave_normal_requests_answered(
    gateway: RunningGateway, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["class_gateway"] == "gthread":
        pytest.skip("gthread is the opt-in class that slow clients can starve (README)")
    # 2 workers x 4 threads held by 8 slow bodies starved gthread; gevent gives each a greenlet.
    with slow_connections(gateway.url, 20, 0.5, "body"):
        answers = [requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=10) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5


def _post(url: str, path: str, body: bytes, framing: bytes, version: bytes = b"1.1") -> Any:
    """POST ``body`` raw with ``framing`` headers; the status and the parsed JSON answer."""
    head = (
        b"POST " + path.encode() + b" HTTP/" + version + b"\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n"
    )
    code, headers, answer = _raw(url, head + body)
    assert headers["content-type"] == "application/json"
    payload = json.loads(answer)
    assert set(payload) == {"error", "detail"}
    return code, payload


def test_a_body_without_a_length_is_411(gateway: RunningGateway) -> None:
    # An HTTP/1.0 client that leaves out Content-Length: gunicorn reads no body (RFC 9112
    # section 6.3), and the answer was 400 "the body is not valid JSON: Expecting value".
    body = json.dumps(QA).encode()
    for path in ("/v1/qa", "/v1/models/qa:predict", "/v1/qa?version=1"):
        code, payload = _post(gateway.url, path, body, b"", version=b"1.0")
        assert code == 411 and "Content-Length" in payload["error"]


def test_a_utf16_body_is_415(gateway: RunningGateway) -> None:
    # RFC 8259 section 8.1: JSON between systems is UTF-8; a UTF-16 body was answered 200.
    body = json.dumps(QA).encode("utf-16")
    code, payload = _post(gateway.url, "/v1/qa", body, b"Content-Length: %d\r\n" % len(body))
    assert code == 415 and "UTF-16" in payload["error"]


def test_doubled_slashes_are_a_json_404(gateway: RunningGateway) -> None:
    # werkzeug's merge_slashes answered a 308 HTML page redirecting to the Host header's URL.
    body = json.dumps(QA).encode()
    code, _ = _post(gateway.url, "/v1//qa", body, b"Content-Length: %d\r\n" % len(body))
    assert code == 404


def test_a_body_of_tiny_chunks_is_400(gateway: RunningGateway) -> None:
    # gunicorn parses each chunk in Python: 1 MB in 1-byte chunks cost a worker 2.1 s of CPU,
    # and was answered 200 (serving.gateway.chunked bounds the chunks for the body's size).
    valid = json.dumps(QA).encode()
    # One chunk past the free ones: refused at the last chunk, so no unread bytes are left
    # for the socket's close to answer with a reset.
    body = valid + b" " * (FREE_CHUNKS + 1 - len(valid))
    frames = b"".join(b"1\r\n%s\r\n" % body[at : at + 1] for at in range(len(body)))
    framing = b"Transfer-Encoding: chunked\r\n"
    code, payload = _post(gateway.url, "/v1/qa", frames + b"0\r\n\r\n", framing)
    assert code == 400 and "chunks" in payload["detail"][0]["msg"]
    sized = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)  # the same body in one chunk
    assert _post_ok(gateway.url, sized, framing)


def _post_ok(url: str, frames: bytes, framing: bytes) -> bool:
    head = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\n" + framing + b"\r\n"
    )
    return _raw(url, head + frames)[0] == 200


def test_a_client_that_closes_gets_the_413_of_a_large_body(gateway: RunningGateway) -> None:
    # urllib asks to close the connection: gunicorn closed it with the body unread, the
    # kernel answered the unread bytes with a reset, and urllib raised ConnectionResetError
    # instead of the 413 (requests, which reads while it sends, got it).
    body = json.dumps({**QA, "article": "x" * 16_000_000}).encode()
    request = urllib.request.Request(
        f"{gateway.url}/v1/qa", data=body, headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "max_body_bytes" in json.loads(refused.value.read())["error"]


def _first_answer(connection: socket.socket) -> bytes:
    """The bytes of the first interim or final answer's head (up to its blank line)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


@pytest.mark.parametrize(
    ("content_type", "length", "status"),
    [
        (b"application/json", 50_000_000, b"413"),  # over max_body_bytes by its header
        (b"text/plain", 100, b"415"),
    ],
)
def test_expect_100_continue_gets_the_refusal_first(
    gateway: RunningGateway, content_type: bytes, length: int, status: bytes
) -> None:
    # gunicorn answered "100 Continue" before the app ran, so the client uploaded a body the
    # gateway refused from its headers alone (a 50 MB upload, then the 413).
    host, port = gateway.url.removeprefix("http://").split(":")
    head = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type + b"\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % length
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        answer = _first_answer(connection)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:80]
    assert b"Connection: close" in answer  # the body may or may not follow: not kept alive


def test_expect_100_continue_then_the_body_is_answered(gateway: RunningGateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    body = json.dumps(QA).encode()
    head = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" % len(body)
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        assert _first_answer(connection) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(body)
        received = read_to_close(connection)
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["model"]["name"] == "qa"


@pytest.mark.parametrize(
    "head", [b"GET /healthz HTTP/1.1\r\n", b"GET /healthz HTTP/1.1\r\nHost: a b\r\n"]
)
def test_an_http_1_1_request_without_a_valid_host_is_400(
    gateway: RunningGateway, head: bytes
) -> None:
    """Found by hostile pass 7: gunicorn answered these (RFC 9112 section 3.2: 400), as the
    model server's cheroot did (``serving.gateway.host_header``)."""
    code, headers, body = _raw(gateway.url, head + b"Connection: close\r\n\r\n")
    assert code == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "Bad Request"
