"""RFC 9112 section 3.2's Host rule on gunicorn's own parser (``serving.gateway.host_header``)."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.http import parser
from gunicorn.http.errors import InvalidHeader
from gunicorn.http.parser import RequestParser

from serving.gateway.host_header import use_host_checked_requests
from tests.unit.gateway.test_chunked import ClientSocket


@pytest.fixture(autouse=True)
def host_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser.RequestParser, "mesg_class", parser.RequestParser.mesg_class)
    use_host_checked_requests()


def _parse(head: bytes) -> object:
    wire = b"GET /v1/models " + head + b"\r\n\r\n"
    return next(iter(RequestParser(Config(), ClientSocket(wire), ("127.0.0.1", 1))))


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1",  # no Host
        b"HTTP/1.1\r\nHost: a b",
        b"HTTP/1.1\r\nHost: a/b",
        b"HTTP/1.1\r\nHost: user@a",
        b"HTTP/1.1\r\nHost: a:80x",
        b"HTTP/1.0\r\nHost: a b",
        b"HTTP/1.1\r\nHost: a\r\nHost: a",
    ],
)
def test_a_missing_repeated_or_invalid_host_is_refused(head: bytes) -> None:
    """Found by hostile pass 7: gunicorn answered an HTTP/1.1 request without Host, or with a
    Host of another form than host[:port] (RFC 9112 section 3.2: a 400)."""
    with pytest.raises(InvalidHeader) as refused:
        _parse(head)
    assert refused.value.hdr == "HOST"


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.0",  # HTTP/1.0 names no host
        b"HTTP/1.1\r\nHost: ",
        b"HTTP/1.1\r\nHost: gateway.example",
        b"HTTP/1.1\r\nHost: gateway.example:8000",
        b"HTTP/1.1\r\nHost: 10.0.0.1:80",
        b"HTTP/1.1\r\nHost: [::1]:8000",
        # RFC 6874's zone in an IPv6 literal (refused before, on both servers)
        b"HTTP/1.1\r\nHost: [fe80::1%25eth0]:8000",
        b"HTTP/1.1\r\nHost: EXAMPLE.COM.:80",
        b"HTTP/1.1\r\nHost: xn--bcher-kva.example",
    ],
)
def test_a_request_with_a_valid_host_is_read(head: bytes) -> None:
    assert _parse(head) is not None


@pytest.mark.parametrize(
    ("head", "closes"),
    [
        (b"HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close", True),
        (b"HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close", True),
        (b"HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close", True),
        (b"HTTP/1.0\r\nConnection: Keep-Alive, X-Other", False),
        (b"HTTP/1.1\r\nHost: a\r\nConnection: keep-alive", False),
        (b"HTTP/1.0\r\nConnection: TE", True),
    ],
)
def test_a_close_option_anywhere_in_connection_closes(head: bytes, closes: bool) -> None:
    """gunicorn read only a Connection value of exactly ``close`` or ``keep-alive``, and only
    the first field: ``keep-alive, close`` kept the connection a client asked to close (RFC
    9110 section 7.6.1: a list of case-insensitive options; the model server's rule)."""
    assert _parse(head).should_close() is closes  # type: ignore[attr-defined]
