"""Reading a TF Serving REST answer off a keep-alive connection (``rest_transport``): by the
call's deadline, skipping interim answers, refusing codings and bodies past the limit, and
telling whether the connection may carry the next call."""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import time
from typing import Any

from serving.gateway.errors import BackendError, BackendFailure

# Most bytes one receive of an answer's body asks for.
BODY_CHUNK_BYTES = 1 << 16
# http.client's bounds on one header line and on a header block's lines.
MAX_LINE = 65536
MAX_HEADERS = 100


class DeadlineReads(io.RawIOBase):
    """A socket's receives, each given the time left to ``deadline`` (``time.monotonic()``)
    and none started past it (``TimeoutError``).

    ``http.client`` reads an answer through ``sock.makefile``, whose receives each get the
    socket's timeout: a server that dripped its status line, headers or body a byte at a
    time (or interim answers one after another) held a call as long as it dripped."""

    def __init__(self, raw: Any, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._raw = raw  # the makefile's SocketIO: the socket stays open while it is
        self._sock = sock
        self._deadline = deadline

    def close(self) -> None:
        """Close the makefile's reader (the socket closes once its connection is closed)."""
        self._raw.close()
        super().close()

    def readable(self) -> bool:
        """Always: a socket's receiving side."""
        return True

    def readinto(self, buffer: Any) -> int:
        """One receive into ``buffer``, given the time left."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer outlasted the deadline")
        self._sock.settimeout(left)
        return int(self._raw.readinto(buffer))


class DeadlineResponse(http.client.HTTPResponse):
    """``http.client``'s answer, skipping every interim answer (1xx but 101) before the final
    one, as RFC 9110 section 15.2 has a client do (``http.client`` skips only 100), and
    reading through :class:`DeadlineReads`."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # http.client's sock.makefile: its SocketIO read through the deadline (detached, not
        # closed: http.client closes the socket of an answer read to its close at once, and
        # the open SocketIO defers that to the answer's end, as makefile's readers do).
        raw = self.fp.detach()
        self.fp = io.BufferedReader(DeadlineReads(raw, sock, deadline))

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            for _ in range(MAX_HEADERS + 1):  # the interim answer's header block
                line = self.fp.readline(MAX_LINE + 1)
                if len(line) > MAX_LINE:
                    raise http.client.LineTooLong("interim header line")
                if line in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("too many interim headers")


def has_bytes(sock: Any) -> bool:
    """Whether an idle connection's socket can be read: the server closed it, or sent bytes
    no request asked for. One non-blocking peek (a ``recv`` with ``MSG_PEEK``: a system call;
    gevent's ``select.poll`` costs a watcher per call); a TLS socket, which takes no flags,
    is polled."""
    if sock is None:
        return True
    if isinstance(sock, ssl.SSLSocket):
        if sock.pending():
            return True
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    sock.settimeout(0.0)  # the next call sets its own: the time left
    try:
        sock.recv(1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: still open, nothing left over
    except OSError:
        return True  # reset meanwhile
    return True  # bytes left over, or b"": closed by the server


# The header fields that frame an answer, lowercase (read in one pass over the headers).
_FRAMING = ("content-encoding", "transfer-encoding", "content-length")


def _framing(response: http.client.HTTPResponse) -> dict[str, list[str]]:
    """Every value of each :data:`_FRAMING` field, by lowercase name."""
    found: dict[str, list[str]] = {name: [] for name in _FRAMING}
    for name, value in response.getheaders():
        values = found.get(name.lower())
        if values is not None:
            values.append(value)
    return found


def codings(fields: list[str]) -> list[str]:
    """The codings the fields of one header list (lowercase; empty elements and
    ``identity`` dropped: no coding)."""
    codings = (part.strip(" \t").lower() for field in fields for part in field.split(","))
    return [coding for coding in codings if coding not in ("", "identity")]


def read_body(response: http.client.HTTPResponse, limit: int) -> tuple[bytes, bool]:
    """The answer's body, read by single receives (``read1``) until its end or the deadline,
    and whether the connection may carry another call: its answer was framed by one length or
    by chunks alone, and the server keeps it open (RFC 9112 section 6.3: a length beside
    chunks may be a smuggled answer).

    The response's receives end at the deadline (:class:`DeadlineResponse`): TimeoutError,
    DEADLINE_EXCEEDED to the caller. INTERNAL: an interim
    answer (101) as the answer, a coding (content or transfer other than ``chunked``: none is
    asked for), two lengths, or a body past ``limit`` bytes."""
    if response.status < 200:
        raise BackendError(BackendFailure.INTERNAL, f"an interim answer {response.status}")
    fields = _framing(response)
    encoding = codings(fields["content-encoding"])
    if encoding:
        raise BackendError(BackendFailure.INTERNAL, f"answer in Content-Encoding {encoding!r}")
    transfer = codings(fields["transfer-encoding"])
    if transfer != ["chunked"] * response.chunked:
        raise BackendError(BackendFailure.INTERNAL, f"answer in Transfer-Encoding {transfer!r}")
    lengths = {value.strip() for value in fields["content-length"]}
    if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
        raise BackendError(BackendFailure.INTERNAL, f"answer with Content-Length {lengths!r}")
    too_large = f"an answer larger than {limit} bytes"
    if (response.length or 0) > limit:
        raise BackendError(BackendFailure.INTERNAL, too_large)
    chunks, size = [], 0
    while chunk := response.read1(BODY_CHUNK_BYTES):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BackendError(BackendFailure.INTERNAL, too_large)
    content = b"".join(chunks)
    if response.length:  # read1 ends quietly at a close before Content-Length's last byte
        raise http.client.IncompleteRead(content, response.length)
    framed = (
        not fields["content-length"] if response.chunked else len(fields["content-length"]) <= 1
    )
    response.close()  # the connection's next request needs its last answer closed
    return content, framed and not response.will_close
