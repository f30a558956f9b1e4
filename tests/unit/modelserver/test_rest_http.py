"""The REST port's HTTP parsing: chunked bodies (linear reads, the limit before a chunk is
read, framing errors as 400) and header lines RFC 9112 has a server refuse.

The reader runs on the bytes cheroot's connection would hand it (a buffered byte stream);
the real server's answers are in tests/integration/modelserver/test_hostile_clients.py.
"""

from __future__ import annotations

import io

import grpc
import pytest
from werkzeug.exceptions import RequestEntityTooLarge

from serving.chunk_counts import FREE_CHUNKS, MIN_AVERAGE_CHUNK_BYTES
from serving.modelserver.errors import ServingError
from serving.modelserver.rest_http import BoundedChunkedRFile, StrictHeaderReader


def _reader(
    wire: bytes, limit: int = 1 << 20
) -> tuple[BoundedChunkedRFile, io.BufferedReader[io.BytesIO]]:
    rfile = io.BufferedReader(io.BytesIO(wire))
    return BoundedChunkedRFile(rfile, limit), rfile


def test_reads_take_bytes_off_the_front_without_copying_the_rest() -> None:
    """werkzeug reads 64 KiB at a time: cheroot's reader re-made the rest of the chunk on each
    read (``buffer = buffer[n:]``), and one 400 MB chunk cost minutes of CPU."""
    chunk = bytes(range(256)) * 4096  # 1 MiB in one chunk
    body, _ = _reader(b"100000\r\n" + chunk + b"\r\n0\r\n\r\n", limit=2 << 20)
    pieces = [body.read(65536)]
    buffer = body.buffer
    while piece := body.read(65536):
        assert body.buffer is buffer  # the same buffer, its front taken off
        pieces.append(piece)
    assert b"".join(pieces) == chunk and body.closed


def test_a_chunk_past_the_limit_is_refused_before_it_is_read() -> None:
    """cheroot read a whole chunk before werkzeug counted it: the server grew past the limit."""
    body, rfile = _reader(b"8\r\n01234567\r\n3e8\r\n" + b"x" * 1000 + b"\r\n0\r\n\r\n", limit=500)
    with pytest.raises(RequestEntityTooLarge):
        body.read()
    assert rfile.read(4) == b"xxxx"  # the refused chunk is still unread


@pytest.mark.parametrize(
    "wire",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # cheroot's ValueError was answered 500
        b"0x3\r\nabc\r\n0\r\n\r\n",  # int(..., 16) reads these; HTTP does not
        b"+3\r\nabc\r\n0\r\n\r\n",
        b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
        b"3" * 2000 + b"\r\n",  # no size line is that long
        b"5\r\nabc",  # the chunk is cut short
        b"3\r\nabcXY0\r\n\r\n",  # no CRLF after the chunk
        b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n",  # trailers without their end
    ],
)
def test_malformed_framing_is_invalid_argument(wire: bytes) -> None:
    body, _ = _reader(wire)
    with pytest.raises(ServingError) as raised:
        body.read()
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("malformed chunked body")


def test_extensions_and_trailers_are_read_to_their_end() -> None:
    """cheroot left the trailer section on the connection, to be parsed as the next request."""
    wire = b"3;name=value\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\nGET /next"
    body, rfile = _reader(wire)
    assert body.read() == b"abcde" and body.closed
    assert rfile.read() == b"GET /next"


def test_lines_and_sized_reads_across_chunks() -> None:
    body, _ = _reader(b"5\r\nab\ncd\r\n3\r\nef\n\r\n0\r\n\r\n")
    assert body.readline() == b"ab\n"
    assert body.readline() == b"cdef\n"
    assert body.readline() == b""
    body, _ = _reader(b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n")
    assert [body.read(3), body.readline(2), body.read(-1), body.read(5)] == [
        b"abc",
        b"de",
        b"fgh",
        b"",
    ]


def test_a_body_of_tiny_chunks_is_refused_at_the_first_chunk_past_the_rule() -> None:
    """~0.8 us of Python a chunk: 256 MB of 1-byte chunks would hold the GIL for ~30 s."""
    body, rfile = _reader(b"1\r\nx\r\n" * (FREE_CHUNKS * 2) + b"0\r\n\r\n")
    with pytest.raises(ServingError) as raised:
        body.read()
    assert f"{FREE_CHUNKS + 1} chunks for {FREE_CHUNKS + 1} bytes" in raised.value.message
    # Refused at the size line of chunk FREE_CHUNKS + 1: its data and the rest are unread.
    assert rfile.read() == b"x\r\n" + b"1\r\nx\r\n" * (FREE_CHUNKS - 1) + b"0\r\n\r\n"
    chunks = [b"x" * MIN_AVERAGE_CHUNK_BYTES] * (FREE_CHUNKS * 2) + [b"}"]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    assert _reader(wire)[0].read() == b"".join(chunks)


@pytest.mark.parametrize(
    "headers",
    [
        b" Host: x\r\n\r\n",  # a first line folded onto nothing: UnboundLocalError, a 500
        b"Host: x\r\nX-Request-ID: a\r\n\tb\r\n\r\n",  # read as X-Request-ID: b
        b"Host : x\r\n\r\n",  # whitespace before the colon (RFC 9112 section 5.1)
        b"X\x01Y: 1\r\n\r\n",  # a field name that is no token (RFC 9110 section 5.1)
        b"X-Request-ID: a\x00b\r\n\r\n",  # NUL in a value (RFC 9110 section 5.5)
        b"X-Request-ID: a\rb\r\n\r\n",
        b"Content-Length: -1\r\n\r\n",  # read to the connection's end: a hung request
        b"Content-Length: +5\r\n\r\n",
        b"Content-Length: 1_0\r\n\r\n",
        b"Content-Length: 5\r\ncontent-length: 100\r\n\r\n",  # the last was taken
        b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
        # cheroot answered an unknown coding 501, a 5xx for a client's header
        b"Transfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
        b"Transfer-Encoding: gzip, chunked\r\n\r\n",
        b"Transfer-Encoding: identity\r\n\r\n",
        b"Transfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
        # both: cheroot read the chunks and kept the connection (section 6.1: close it)
        b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
        b"Content-Length: 3\r\nTransfer-Encoding: Chunked\r\n\r\n",
    ],
)
def test_header_lines_rfc_9112_refuses_are_refused(headers: bytes) -> None:
    """cheroot answers the reader's ``ValueError`` 400 (read_request_headers)."""
    pattern = r"Illegal header line|Malformed Content-Length|Transfer-Encoding"
    with pytest.raises(ValueError, match=pattern):
        StrictHeaderReader()(io.BufferedReader(io.BytesIO(headers)), {})


def test_headers_are_read_as_cheroot_reads_them() -> None:
    wire = (
        b"Host: x\r\nAccept: a\r\naccept: b\r\nX-Empty:\r\nX-Time: 12:00\r\n"
        b"Content-Length: 04\r\n\r\nbody"
    )
    rfile = io.BufferedReader(io.BytesIO(wire))
    assert StrictHeaderReader()(rfile, {}) == {
        b"Host": b"x",
        b"Accept": b"a, b",
        b"X-Empty": b"",
        b"X-Time": b"12:00",
        b"Content-Length": b"04",
    }
    assert rfile.read() == b"body"
    chunked = io.BufferedReader(io.BytesIO(b"Transfer-Encoding: , Chunked \r\n\r\n"))
    assert StrictHeaderReader()(chunked, {}) == {b"Transfer-Encoding": b", Chunked"}


@pytest.mark.parametrize(
    "headers",
    [
        b"Accept: a\r\n\r\n",  # HTTP/1.1 without Host
        b"Host: a\r\nHost: b\r\n\r\n",  # cheroot took "a, b"
        b"Host: a\r\nhost: a\r\n\r\n",
        b"Host: a b\r\n\r\n",
        b"Host: a/b\r\n\r\n",
        b"Host: a:80x\r\n\r\n",
        b"Host: user@a\r\n\r\n",
    ],
)
def test_a_missing_repeated_or_invalid_host_is_refused(headers: bytes) -> None:
    """Found by hostile pass 7: RFC 9112 section 3.2 has a server answer 400 to an HTTP/1.1
    request without Host, with two, or with one that is no host[:port]; cheroot answered
    them (two joined as "a, b": a front and this server could read other hosts)."""
    with pytest.raises(ValueError, match="Host header"):
        StrictHeaderReader(require_host=True)(io.BufferedReader(io.BytesIO(headers)), {})


@pytest.mark.parametrize(
    "host",
    [
        b"",
        b"example.com",
        b"example.com:8501",
        b"127.0.0.1:1",
        b"[::1]:8501",
        b"a%20b",
        b"[fe80::1%25eth0]:8501",  # RFC 6874's zone: refused before
    ],
)
def test_a_host_of_any_valid_form_is_read(host: bytes) -> None:
    headers = b"Host: " + host + b"\r\n\r\n"
    read = StrictHeaderReader(require_host=True)(io.BufferedReader(io.BytesIO(headers)), {})
    assert read == {b"Host": host}
    assert StrictHeaderReader()(io.BufferedReader(io.BytesIO(b"Accept: a\r\n\r\n")), {})
