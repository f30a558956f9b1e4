"""Chunked request bodies under real gunicorn (the default gevent worker), from a raw socket.

A chunked body has no Content-Length: the size limit must still refuse it whole (413), never
parse the part read up to the limit (issue 8: a valid object followed by spaces was answered
200, a long object got 400 "Unterminated string").
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.gateway.launcher import RunningGateway
from tests.support.model_server import ModelServerHandle
from tests.support.raw_http import send_raw
from tests.support.served_gateway import served_gateway

pytestmark = pytest.mark.slow
LIMIT = 4000
QA = {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}


@pytest.fixture(scope="module")
def gateway(tiny_repo: Path, tiny_model_server: ModelServerHandle) -> Iterator[RunningGateway]:
    settings = {"GATEWAY_MAX_BODY_BYTES": str(LIMIT)}
    with served_gateway(tiny_repo, settings, workers=1, server=tiny_model_server) as running:
        yield running


def _post_chunked(url: str, path: str, body: bytes, chunk: int = 1000) -> tuple[int, bytes]:
    """POST ``body`` in chunks of ``chunk`` bytes; the status and body of the answer."""
    frames = b"".join(
        b"%x\r\n%s\r\n" % (len(body[at : at + chunk]), body[at : at + chunk])
        for at in range(0, len(body), chunk)
    )
    return _send_frames(url, path, frames + b"0\r\n\r\n")


def _send_frames(url: str, path: str, frames: bytes) -> tuple[int, bytes]:
    """Send chunked ``frames`` as they are (terminator included); the status and body."""
    host, port = url.removeprefix("http://").split(":")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head + frames)
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(65536) or b"\r\n\r\n"
        header, _, answer = received.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        fields = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        # Read by Content-Length (the connection stays open for keep-alive).
        while len(answer) < int(fields["content-length"]):
            answer += connection.recv(65536)
    return int(lines[0].split(" ")[1]), answer


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/qa", QA),
        ("/v1/models/qa:predict", {"inputs": QA}),
        ("/v1/profile", {"posts": ["I like hiking."]}),
        ("/v1/similarity", {"pairs": [{"text_a": "a cat", "text_b": "a dog"}]}),
    ],
)
def test_chunked_bodies_over_the_limit_are_413(gateway, path, payload) -> None:
    valid = json.dumps(payload).encode()
    assert _post_chunked(gateway.url, path, valid)[0] == 200
    padded = valid + b" " * LIMIT  # a valid object followed by spaces
    string = json.dumps({**payload, "pad": "x" * LIMIT}).encode()  # cut: unterminated string
    for body in (padded, string):
        status, answer = _post_chunked(gateway.url, path, body)
        assert status == 413, answer
        assert json.loads(answer)["error"] == f"the body exceeds the limit max_body_bytes={LIMIT}"
    exactly = valid + b" " * (LIMIT - len(valid))
    assert _post_chunked(gateway.url, path, exactly)[0] == 200


@pytest.mark.parametrize(
    "frames",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"-5\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"],
    ids=["bad-size", "negative-size", "missing-terminator"],
)
def test_malformed_chunk_framing_is_400_not_500(gateway: RunningGateway, frames: bytes) -> None:
    # Found by a new-user trial: gunicorn's InvalidChunkSize surfaced as a 500.
    status, body = _send_frames(gateway.url, "/v1/qa", frames)
    assert status == 400
    assert set(json.loads(body)) == {"error", "detail"}


def _raw(url: str, request: bytes) -> int:
    """Send ``request``, close the sending side, return the answer's status."""
    received = send_raw(url, request, timeout=30, close_sending=True)
    return int(received.split(b" ", 2)[1])


def test_a_body_shorter_than_its_content_length_is_never_parsed(gateway: RunningGateway) -> None:
    # Found by a new-user trial: half a body, then the client closed its side: answered 200.
    body = json.dumps(QA).encode()
    head = (
        "POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) + 40}\r\n\r\n"
    ).encode()
    assert _raw(gateway.url, head + body) == 400


def test_a_compressing_transfer_coding_is_415(gateway: RunningGateway) -> None:
    head = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: gzip, chunked\r\n\r\n"
    )
    body = json.dumps(QA).encode()
    frames = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    assert _raw(gateway.url, head + frames) == 415
