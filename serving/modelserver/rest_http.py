"""cheroot's HTTP/1.1 parsing on the REST port, hardened for a server anyone may call.

cheroot (the REST port's server) decodes ``Transfer-Encoding: chunked`` with its
``ChunkedRFile``, which had four faults:

- **quadratic reads**: it keeps a chunk in a ``bytes`` buffer and cuts each read off its
  front (``buffer = buffer[n:]`` copies the rest); werkzeug reads 64 KiB at a time, so one
  400 MB chunk cost minutes of CPU under the GIL, and the gRPC port missed every deadline
  meanwhile;
- **no limit**: it reads a whole chunk before werkzeug counts its bytes against
  ``MAX_CONTENT_LENGTH`` (the server grew by the chunk's size past the limit), and reads a
  chunk-size line of any length;
- **no answer to a bad chunk**: its ``ValueError`` reached the app as werkzeug's
  ``ClientDisconnected`` and was answered 500;
- **any number of chunks**: ~0.8 us of Python each, so 256 MB of 1-byte chunks would hold the
  GIL for ~30 s (:func:`serving.chunk_counts.too_many_chunks`, the gateway's rule, bounds them).

A chunked body the app did not read (a GET's, or one refused before reading) stayed on the
connection: cheroot parsed it as the next request and sent a second answer (400) that a
pipelining client takes for its next request's. And its header reader took a line starting
with whitespace (HTTP/1.0's line folding) as the previous header's new value, and as the
first header line raised ``UnboundLocalError`` (a 500); RFC 9112 section 5.2 has a server
refuse it (or read it as a space), and section 5.1 refuse whitespace before a field's colon;
it took a ``Content-Length`` of ``-1`` as a body read to the connection's end (the request
hung until the client closed) and the last of two different ones (section 6.3: 400).

:func:`harden` makes a ``cheroot.wsgi.Server`` use :class:`RestRequest`, which reads chunked
bodies with :class:`BoundedChunkedRFile`, closes a connection whose chunked body was left
unread, reads headers with :class:`StrictHeaderReader`, and answers cheroot's own refusals
in JSON (they were ``text/plain``). cheroot's other plain answer, a 503 when its accept queue
is full, is unreachable here: ``wsgi.Server``'s queue is unbounded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cheroot import errors, server
from werkzeug.exceptions import RequestEntityTooLarge

from serving.chunk_counts import too_many_chunks, too_many_chunks_message
from serving.modelserver.errors import invalid_argument
from serving.plain_http import HOST, connection_options

# A chunk-size line: hex digits, an optional extension, CRLF (RFC 9112 section 7.1). 16 hex
# digits hold any size; a longer line is no size line.
MAX_SIZE_LINE = 1024
MAX_TRAILER_LINES = 64
# RFC 9110 section 5.1: a field name is a token; section 5.5: a value holding NUL, CR or LF
# is refused (cheroot passed "X\x01Y" and NUL bytes on to the app).
FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
BAD_FIELD_VALUE = re.compile(rb"[\x00\r\n]")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?\r?\n")


class BoundedChunkedRFile(server.ChunkedRFile):
    """cheroot's ``ChunkedRFile`` with a ``bytearray`` buffer (reads are linear in the body:
    a read takes bytes off its front without copying the rest), ``maxlen`` checked before a
    chunk is read (werkzeug's :class:`~werkzeug.exceptions.RequestEntityTooLarge`, 413), and
    framing errors raised as INVALID_ARGUMENT (400), not ``ValueError``."""

    def __init__(self, rfile: Any, maxlen: int) -> None:
        super().__init__(rfile, maxlen)
        self.buffer = bytearray()
        self.chunks = 0
        self.size = 0

    def _fetch(self) -> None:
        if self.closed:
            return
        line = self.rfile.readline(MAX_SIZE_LINE)
        self.bytes_read += len(line)
        size_line = CHUNK_SIZE.fullmatch(line)
        if size_line is None:
            raise invalid_argument(f"malformed chunked body: chunk-size line {line[:40]!r}")
        size = int(size_line.group(1), 16)
        if size == 0:
            self._skip_trailers()
            self.closed = True
            return
        if self.maxlen and self.bytes_read + size > self.maxlen:
            raise RequestEntityTooLarge()
        self.chunks += 1
        self.size += size
        if too_many_chunks(self.chunks, self.size):
            message = too_many_chunks_message(self.chunks, self.size)
            raise invalid_argument(f"malformed chunked body: {message}")
        chunk = self.rfile.read(size)
        self.bytes_read += len(chunk)
        if len(chunk) != size or self.rfile.read(2) != b"\r\n":
            raise invalid_argument("malformed chunked body: a chunk is cut short")
        self.buffer += chunk

    def _skip_trailers(self) -> None:
        """Read the trailer section up to its empty line (cheroot never reads it: its lines
        were parsed as the next request)."""
        for _ in range(MAX_TRAILER_LINES):
            line = self.rfile.readline(MAX_SIZE_LINE)
            self.bytes_read += len(line)
            if line in (b"\r\n", b"\n"):
                return
            if not line.endswith(b"\n"):
                break
        raise invalid_argument("malformed chunked body: trailers without their end")

    def read(self, size: int | None = None) -> bytes:
        """Up to ``size`` bytes of the body (all of it for ``None`` or a negative size)."""
        whole = size is None or size < 0
        while not self.closed and (whole or len(self.buffer) < size):  # type: ignore[operator]
            self._fetch()
        taken = len(self.buffer) if whole else min(size, len(self.buffer))  # type: ignore[type-var]
        data = bytes(self.buffer[:taken])
        del self.buffer[:taken]  # CPython moves the bytearray's start: no copy of the rest
        return data

    def readline(self, size: int | None = None) -> bytes:
        """One line of the body (up to ``size`` bytes)."""
        limit = None if size is None or size < 0 else size
        while not self.closed and self.buffer.find(b"\n") < 0:
            if limit is not None and len(self.buffer) >= limit:
                break
            self._fetch()
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        return self.read(end if limit is None else min(end, limit))


class _CheckedHeaderLines:
    """The stream cheroot's header reader reads lines from, refusing (``ValueError``: cheroot's
    400 for a bad header, and the connection closed) a line folded onto the last one,
    whitespace before a colon, a ``Content-Length`` that is no decimal number or is given
    twice (RFC 9112 section 6.3: cheroot took ``-1`` as a body read to the connection's end,
    and the last of two), and a ``Transfer-Encoding`` other than one ``chunked`` or sent with
    a ``Content-Length`` (section 6.1; as gunicorn refuses them at the gateway). cheroot
    answered an unknown coding ``501`` (a 5xx for a client's header, no body), and a request
    with both a length and ``chunked`` kept its connection open, where section 6.1 has the
    server close it: a front that framed the body by its length would smuggle a request."""

    def __init__(self, rfile: Any, require_host: bool = False) -> None:
        self._rfile = rfile
        self._length_seen = False
        self._codings: list[bytes] = []
        self._require_host = require_host
        self._host_seen = False

    def readline(self) -> bytes:
        line: bytes = self._rfile.readline()
        if line[:1] in (b" ", b"\t"):
            raise ValueError("Illegal header line: folded onto the previous one")
        name, colon, value = line.partition(b":")
        if colon and name.rstrip(b" \t") != name:
            raise ValueError("Illegal header line: whitespace before the colon")
        if colon and not FIELD_NAME.fullmatch(name):
            raise ValueError("Illegal header line: a field name that is no token")
        if colon and BAD_FIELD_VALUE.search(value, 0, len(value) - 2):  # less its CRLF
            raise ValueError("Illegal header line: NUL, CR or LF in a field value")
        if colon and name.lower() == b"content-length":
            if self._length_seen or not value.strip(b" \t\r\n").isdigit():
                raise ValueError("Malformed Content-Length Header.")
            self._length_seen = True
        if colon and name.lower() == b"transfer-encoding":
            parts = (part.strip(b" \t\r\n").lower() for part in value.split(b","))
            self._codings += [part for part in parts if part]  # empty elements are skipped
        if colon and name.lower() == b"host":
            # RFC 9112 section 3.2: a server MUST answer 400 to a Host given twice or with an
            # invalid value (cheroot took the last of two, and any bytes): a front and this
            # server may each read another host from the one request.
            if self._host_seen or not HOST.fullmatch(value.strip(b" \t\r\n").decode("latin-1")):
                raise ValueError("Invalid Host header: give one host[:port] (RFC 9112 3.2)")
            self._host_seen = True
        if line in (b"\r\n", b"\n") and self._require_host and not self._host_seen:
            raise ValueError("Missing Host header (RFC 9112 3.2)")
        if line in (b"\r\n", b"\n") and self._codings:  # the end of the header block
            if self._codings != [b"chunked"]:
                raise ValueError("Unsupported Transfer-Encoding: only one 'chunked' is read.")
            if self._length_seen:
                raise ValueError("Transfer-Encoding and Content-Length given together.")
        return line


class StrictHeaderReader(server.HeaderReader):
    """cheroot's header reader on :class:`_CheckedHeaderLines` (RFC 9112 sections 3.2, 5.1,
    5.2); ``require_host``: the request is HTTP/1.1, which must name its host."""

    def __init__(self, require_host: bool = False) -> None:
        self.require_host = require_host

    def __call__(self, rfile: Any, hdict: Any = None) -> Any:
        """cheroot's reading of the header block."""
        return super().__call__(_CheckedHeaderLines(rfile, self.require_host), hdict)


HTTP10_HEADERS = StrictHeaderReader()
HTTP11_HEADERS = StrictHeaderReader(require_host=True)


class RestRequest(server.HTTPRequest):
    """cheroot's request, reading headers with :class:`StrictHeaderReader`, a chunked body with
    :class:`BoundedChunkedRFile`, and closing the connection when the app left such a body
    unread."""

    header_reader = HTTP10_HEADERS

    def __init__(
        self, server: Any, conn: Any, proxy_mode: bool = True, strict_mode: bool = True
    ) -> None:
        # cheroot refuses an absolute-form target ("GET http://host/v1/models/qa") unless it
        # is a proxy; RFC 9112 section 3.2.2 has a server accept it (the gateway's gunicorn
        # does). Proxy mode reads its path; CONNECT, which it would also take, is refused.
        super().__init__(server, conn, proxy_mode, strict_mode)

    def read_request_headers(self) -> bool:
        """cheroot's reading of the headers; an HTTP/1.1 request without ``Host`` is refused
        (RFC 9112 section 3.2: 400; cheroot answered it), and a ``close`` option anywhere in
        ``Connection`` closes the connection after the answer (RFC 9110 section 7.6.1: a
        list, tokens case-insensitive; cheroot closed only for the whole value ``close``, so
        ``keep-alive, close`` or ``Close`` left a client waiting for the close it asked)."""
        self.header_reader = (
            HTTP11_HEADERS if self.request_protocol == b"HTTP/1.1" else HTTP10_HEADERS
        )
        if not super().read_request_headers():  # type: ignore[no-untyped-call]
            return False
        if "close" in connection_options(
            [self.inheaders.get(b"Connection", b"").decode("latin-1")]
        ):
            self.close_connection = True
        return True

    def respond(self) -> None:
        """Run the app (cheroot's ``respond``, with the bounded chunked reader)."""
        if self.method == b"CONNECT":  # as cheroot answers it when no proxy
            self.simple_response("405 Method Not Allowed")
            return
        if not self.chunked_read:
            super().respond()
            return
        self.rfile = BoundedChunkedRFile(self.conn.rfile, self.server.max_chunked_body_bytes)
        self.server.gateway(self).respond()

    def simple_response(self, status: Any, msg: Any = "") -> None:
        """cheroot's own refusals (400 for a bad request line or header, 408, 413 and 414 past
        the header limit, 501, 505, 500 when reading failed) as every answer of this port:
        JSON in TF Serving's shape ``{"error": "..."}``. cheroot wrote them as ``text/plain``,
        which a TF Serving client's JSON parsing of an error failed on. The connection is
        closed after it (cheroot stops reading it anyway; the header tells the client)."""
        status = str(status)
        code, _, reason = status.partition(" ")
        if isinstance(msg, bytes):  # cheroot passes str; bytes would be a client's text
            msg = msg.decode("latin-1")
        body = (json.dumps({"error": msg or reason}) + "\n").encode("ascii")
        head = (
            f"{self.server.protocol} {code} {reason}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Type: application/json\r\n"
            "Connection: close\r\n\r\n"
        )
        self.close_connection = True
        try:
            self.conn.wfile.write(head.encode("latin-1") + body)
        except OSError as error:
            if error.args[0] not in errors.socket_errors_to_ignore:
                raise

    def send_headers(self) -> None:
        """cheroot's headers; ``Connection: close`` when a chunked body was not read to its end
        (its rest would be read as the next request)."""
        if self.chunked_read and not self.rfile.closed:
            self.close_connection = True
        super().send_headers()


class RestConnection(server.HTTPConnection):
    """cheroot's connection, making :class:`RestRequest` requests."""

    RequestHandlerClass = RestRequest


def harden(rest_server: Any, body_limit: int, header_limit: int) -> None:
    """Make ``rest_server`` (a ``cheroot.wsgi.Server``) parse requests with :class:`RestRequest`,
    reading chunked bodies of at most ``body_limit`` bytes and request lines and headers of at
    most ``header_limit`` bytes together (cheroot reads them unbounded by default: a 300 MB
    header grew the server by 400 MB; 414 or 413 past it, cheroot's answers). cheroot's own
    ``max_request_body_size`` is left at 0: set, it would answer a ``Content-Length`` past it in
    plain text, before the app's JSON 413."""
    rest_server.max_chunked_body_bytes = body_limit
    rest_server.max_request_header_size = header_limit
    rest_server.ConnectionClass = RestConnection
