"""The REST port's HTTP server's own refusals (before the app runs) answer in JSON, in TF
Serving's error shape, with their status: cheroot wrote them as ``text/plain``."""

from __future__ import annotations

import json

import pytest

from serving.modelserver.server import MAX_REST_HEADER_BYTES
from tests.support.raw_http import parse_answer, send_raw

GET = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\n"
REFUSALS = {
    "no-crlf": (b"GET /v1/models/qa HTTP/1.1\n\n", 400),
    "bad-protocol": (b"GET /v1/models/qa FTP/1.1\r\n\r\n", 400),
    "bad-version": (b"GET /v1/models/qa HTTP/1\r\n\r\n", 400),
    "no-version-number": (b"GET /v1/models/qa HTTP/x.y\r\n\r\n", 400),
    "two-parts": (b"GET /v1/models/qa\r\n\r\n", 400),
    "http-2": (b"GET /v1/models/qa HTTP/2.0\r\n\r\n", 505),
    "lower-case-method": (b"get /v1/models/qa HTTP/1.1\r\n\r\n", 400),
    "no-leading-slash": (b"GET v1/models/qa HTTP/1.1\r\n\r\n", 400),
    "fragment": (b"GET /v1/models/qa#x HTTP/1.1\r\n\r\n", 400),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
    "header-without-colon": (GET + b"X-Broken\r\n\r\n", 400),
    "folded-header": (GET + b" folded\r\n\r\n", 400),
    "bad-length": (GET + b"Content-Length: ten\r\n\r\n", 400),
    "control-in-name": (GET + b"X\x01Y: 1\r\n\r\n", 400),
    "nul-in-value": (GET + b"X-Request-ID: a\x00b\r\n\r\n", 400),
    "cr-in-value": (GET + b"X-Request-ID: a\rb\r\n\r\n", 400),
    "unknown-coding": (GET + b"Transfer-Encoding: gzip\r\n\r\n", 400),
    # RFC 9112 section 3.2: 400 for an HTTP/1.1 request without Host, a Host given twice or
    # one that is no host[:port] (hostile pass 7: cheroot answered all three)
    "no-host": (b"GET /v1/models/qa HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    "two-hosts": (GET + b"Host: y\r\n\r\n", 400),
    "bad-host": (b"GET /v1/models/qa HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    "headers-too-large": (GET + b"X-Flood: " + b"a" * MAX_REST_HEADER_BYTES + b"\r\n\r\n", 413),
    "url-too-long": (b"GET /v1/models/" + b"a" * MAX_REST_HEADER_BYTES + b" HTTP/1.1\r\n\r\n", 414),
}


@pytest.mark.parametrize(("wire", "status"), REFUSALS.values(), ids=REFUSALS.keys())
def test_the_http_servers_own_refusals_are_json(server, local_only, wire, status):
    received = send_raw(server.rest_url, wire)
    code, headers, body = parse_answer(received)
    assert code == status
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert list(error) == ["error"] and error["error"]
    assert received.count(b"HTTP/1.1 ") == 1  # closed: nothing after the refusal is read


def test_an_absolute_form_target_is_served(server, local_only):
    """RFC 9112 section 3.2.2: a server accepts it; cheroot refused it unless a proxy."""
    wire = b"GET http://127.0.0.1/v1/models/qa HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, _, body = parse_answer(send_raw(server.rest_url, wire))
    assert status == 200 and json.loads(body)["model_version_status"]


@pytest.mark.parametrize("option", [b"close", b"Close", b"keep-alive, close", b"Upgrade,close"])
def test_a_close_option_in_connection_closes_the_connection(server, local_only, option):
    """Found by hostile pass 7: cheroot closed only for a Connection value of exactly
    ``close`` (RFC 9110 section 7.6.1: a list of case-insensitive options): the client
    waited for a close it had asked for (send_raw reads until the server closes)."""
    wire = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\nConnection: " + option + b"\r\n\r\n"
    code, headers, _ = parse_answer(send_raw(server.rest_url, wire, timeout=30))
    assert code == 200 and headers["connection"].lower() == "close"
