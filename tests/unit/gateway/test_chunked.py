"""The bound on a chunked body's chunks (``serving.gateway.chunked``), on gunicorn's own parser.

A 1 MB body in 1-byte chunks cost a gevent worker 2.1 s of CPU (gunicorn parses each chunk in
Python); the raw-socket case under real gunicorn is in
``tests/integration/gateway/test_http_edge.py``.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import message, wsgi
from gunicorn.http.errors import InvalidChunkSize
from gunicorn.http.parser import RequestParser

from serving.chunk_counts import FREE_CHUNKS, MIN_AVERAGE_CHUNK_BYTES
from serving.gateway.chunked import (
    BoundedChunkedReader,
    TooManyChunksError,
    use_bounded_chunked_bodies,
)
from serving.gateway.one_write import OneWriteResponse
from serving.gateway.workers import GeventWorker, ThreadWorker


class ClientSocket:
    """A client socket holding the request bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def recv(self, size: int) -> bytes:
        return self._data.read(size)

    def recv_into(self, buffer: Any, size: int = 0) -> int:
        data = self._data.read(size or len(buffer))
        buffer[: len(data)] = data
        return len(data)


@pytest.fixture
def bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(message, "ChunkedReader", message.ChunkedReader)  # restored after
    use_bounded_chunked_bodies()


def _request(chunks: list[bytes]) -> Any:
    """gunicorn's parsed request of a chunked POST of ``chunks`` (body not read yet)."""
    frames = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    request = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + frames
        + b"0\r\n\r\n"
    )
    return next(iter(RequestParser(Config(), ClientSocket(request), ("127.0.0.1", 1))))


def _read(chunks: list[bytes]) -> bytes:
    body: bytes = _request(chunks).body.read()
    return body


@pytest.mark.usefixtures("bounded")
def test_a_body_of_tiny_chunks_is_refused_as_a_framing_error() -> None:
    with pytest.raises(TooManyChunksError) as refused:
        _read([b" "] * (FREE_CHUNKS * 3))
    assert isinstance(refused.value, InvalidChunkSize)  # gunicorn answers its own 400 too
    assert refused.value.chunks == FREE_CHUNKS + 1  # stopped at once, not after the body
    assert f"{FREE_CHUNKS} chunks" in str(refused.value)


@pytest.mark.usefixtures("bounded")
@pytest.mark.parametrize(
    "chunks",
    [
        [b" "] * FREE_CHUNKS,
        [b"x" * MIN_AVERAGE_CHUNK_BYTES] * (FREE_CHUNKS * 2) + [b"}"],  # with a short end
        [b"x" * 65536] * 4,
        [b"{", b"}"],
    ],
    ids=["free", "average", "large", "two"],
)
def test_bodies_clients_send_are_read_whole(chunks: list[bytes]) -> None:
    assert _read(chunks) == b"".join(chunks)


def test_without_the_bound_gunicorn_reads_any_number_of_chunks() -> None:
    # The reader the workers replace: the case above that is refused is read whole.
    assert message.ChunkedReader is not BoundedChunkedReader
    assert _read([b" "] * (FREE_CHUNKS * 3)) == b" " * (FREE_CHUNKS * 3)


@pytest.mark.parametrize("worker_class", [GeventWorker, ThreadWorker])
def test_the_gateway_workers_bound_chunked_bodies(
    worker_class: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message, "ChunkedReader", message.ChunkedReader)  # restored after
    monkeypatch.setattr(wsgi, "Response", wsgi.Response)  # init_process sets it too
    for base in worker_class.__mro__[2:]:  # gunicorn's own would run the worker's loop
        if "init_process" in vars(base):
            monkeypatch.setattr(base, "init_process", lambda self: None)
    worker: Any = object.__new__(worker_class)
    worker.cfg = Config()
    worker.init_process()
    assert message.ChunkedReader is BoundedChunkedReader


@pytest.mark.usefixtures("bounded")
def test_the_connection_closes_after_a_refused_body() -> None:
    # Its unread chunks would be parsed as the next request (a second, garbled answer).
    refused, kept = _request([b" "] * (FREE_CHUNKS * 2)), _request([b"{}"])
    with pytest.raises(TooManyChunksError):
        refused.body.read()
    assert kept.body.read() == b"{}"
    for request, closes in ((refused, True), (kept, False)):
        response = OneWriteResponse(request, ClientSocket(b""), Config())
        response.start_response("400 BAD REQUEST", [("Content-Length", "2")])
        assert response.should_close() is closes
