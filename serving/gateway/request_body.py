"""The request body: content-type, content-coding and size checks, then the JSON parse.

Every view that takes a body reads it here (``read_json``); the WSGI fast path
(:mod:`serving.gateway.fastpath`) calls ``read_json_body`` with the environ itself.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from serving.gateway.chunked import ChunkOverLimitError
from serving.gateway.errors import GatewayError, echo
from serving.gateway.read_timeout import ReadTimeout
from serving.gateway.strict_json import parse_body
from serving.gateway.web import current_request

WSGIEnvironment = dict[str, Any]
# (environ key, header name, codings allowed): anything else is refused (read_json_body).
CODING_HEADERS = (
    ("HTTP_CONTENT_ENCODING", "Content-Encoding", ("", "identity")),
    ("HTTP_TRANSFER_ENCODING", "Transfer-Encoding", ("", "identity", "chunked")),
)
UTF8_NAMES = frozenset({"utf-8", "utf8"})
# The server parser's message about a malformed body framing is echoed this long (it may
# quote the client's bytes: echo cuts and escapes them).
MAX_FRAMING_MESSAGE = 160
# json.detect_encoding's names for UTF-8 (a leading BOM is ignored, as RFC 8259 section 8.1
# allows); any other (UTF-16/32, told by a BOM or the NUL bytes of a body's first characters)
# is refused.
UTF8_DETECTED = frozenset({"utf-8", "utf-8-sig"})


def read_json() -> Any:
    """The parsed JSON body of Flask's current request (:func:`read_json_body`)."""
    return read_json_body(current_request().environ, current_app.config["MAX_CONTENT_LENGTH"])


def read_json_body(environ: WSGIEnvironment, limit: int) -> Any:
    """The parsed JSON body, after the content-type, content-coding and size checks.

    Raises GatewayError: 415 (not ``application/json``, a ``Content-Encoding`` other than
    ``identity``: bodies are never decoded, so encoded bytes are never parsed as JSON, a
    ``charset`` other than UTF-8 declared for a body that is not ASCII, or a body in UTF-16 or
    UTF-32, declared or not: RFC 8259 section 8.1), 411 (neither ``Content-Length`` nor
    chunked: :func:`read_body`), 413 (more than ``limit`` bytes, whatever the framing:
    ``Content-Length`` or chunked), 400 (not JSON, or nested too deeply), 422 (an object
    repeats a key: ``strict_json.parse_body``).
    Headers are read from ``environ`` as werkzeug's ``Request`` reads them.
    """
    if mimetype(environ) != "application/json":
        raise GatewayError(415, "Content-Type must be application/json")
    # Transfer codings other than chunked (gzip, deflate, ...) compress the body just as
    # content codings do: refused alike, never parsed as JSON.
    for key, header, allowed in CODING_HEADERS:
        value = environ.get(key)
        if not value:
            continue  # "" splits into [""]: allowed
        codings = [item.strip().lower() for item in value.split(",")]
        refused = [coding for coding in codings if coding not in allowed]
        if refused:
            raise GatewayError(
                415,
                f"{header} '{echo(refused[0])}' is not supported; send the JSON uncompressed",
                headers={"Accept-Encoding": "identity"},
            )
    body = read_body(limit, environ)
    charset = declared_charset(environ)
    if charset is not None and charset.lower() not in UTF8_NAMES and not body.isascii():
        # RFC 8259 section 8.1: JSON is UTF-8. An ASCII body reads alike in every charset a
        # client may declare (ISO-8859-1 is common); any other would be read as other text.
        raise GatewayError(
            415, f"charset '{echo(charset)}' is not supported; send the JSON in UTF-8"
        )
    encoding = json.detect_encoding(body)
    if encoding not in UTF8_DETECTED:
        # json.loads would read it (RFC 4627 allowed UTF-16/32); RFC 8259 section 8.1 says
        # JSON exchanged between systems MUST be UTF-8, and other parsers refuse it.
        raise GatewayError(
            415, f"the body is {encoding.upper()}, not UTF-8; send the JSON in UTF-8"
        )
    try:
        return parse_body(body)
    except ValueError as error:
        raise GatewayError(400, "the body is not valid JSON", [{"msg": str(error)}]) from error
    except RecursionError as error:
        raise GatewayError(400, "the body is nested too deeply") from error


def mimetype(environ: WSGIEnvironment) -> str:
    """The lowercased media type of ``Content-Type`` without parameters (werkzeug's
    ``Request.mimetype``; the common exact ``application/json`` is not parsed again)."""
    value: str = environ.get("CONTENT_TYPE", "")
    if value == "application/json":
        return value
    return parse_options_header(value)[0].lower()


def declared_charset(environ: WSGIEnvironment) -> str | None:
    """The ``charset`` parameter of ``Content-Type``, if the client gave one."""
    value: str = environ.get("CONTENT_TYPE", "")
    if value == "application/json":
        return None
    return parse_options_header(value)[1].get("charset")


def read_body(limit: int, environ: WSGIEnvironment | None = None) -> bytes:
    """The body, at most ``limit`` bytes, else 413; never a body cut at the limit.

    Raises GatewayError 411 when the request has neither ``Content-Length`` nor chunked
    framing: by RFC 9112 section 6.3 its body is then empty, yet a client that sends one
    unframed (an HTTP/1.0 client omitting the header) would be told its JSON is invalid
    (``Expecting value``), and its bytes would be read as the next request.

    Raises GatewayError 408 when the client stops sending its body for
    ``client_read_timeout_seconds`` (:mod:`serving.gateway.read_timeout`).

    With ``Content-Length`` the header decides. A chunked body has no length up front: werkzeug
    stops reading it at ``MAX_CONTENT_LENGTH`` without an error (the rest would be parsed as
    if it were the whole body), so this reads one byte more than the limit to tell "exactly
    the limit" from "over it".
    """
    environ = current_request().environ if environ is None else environ
    length = get_content_length(environ)
    if length is None and not _chunked(environ):
        raise GatewayError(411, "Content-Length is required (or Transfer-Encoding: chunked)")
    if length is not None and length > limit:
        raise _too_large(limit)
    if length is not None and environ.get("wsgi.input_terminated"):
        # The server ends the stream at Content-Length (gunicorn): one read of that many
        # bytes, without werkzeug's wrapper reading on until the stream reports its end.
        stream, size = environ["wsgi.input"], length
    else:
        stream, size = get_input_stream(environ, max_content_length=limit + 1), -1
    try:
        body: bytes = stream.read(size)
    except ChunkOverLimitError as error:
        raise _too_large(limit) from error  # announced past the limit: refused before it comes
    except Exception as error:
        # The client stopped sending (serving.gateway.read_timeout): RFC 9110 section 15.5.9;
        # the connection closes (gunicorn's body failed), its next bytes are this body's. A
        # chunked body's werkzeug stream turns it into its own 400 (ClientDisconnected), the
        # timeout as its context.
        timeout = error if isinstance(error, ReadTimeout) else error.__context__
        if isinstance(timeout, ReadTimeout):
            message = [{"msg": str(timeout)}]
            raise GatewayError(408, "the body did not arrive in time", message) from error
        if isinstance(error, (OSError, ValueError)):
            raise GatewayError(400, "the body cannot be read (malformed framing)") from error
        # The server's own parser errors (gunicorn: InvalidChunkSize, ChunkMissingTerminator,
        # the workers' TooManyChunksError) are the client's malformed framing, not a fault of
        # ours: 400 saying what the parser refused, not 500.
        if any(kind.__module__.startswith("gunicorn.http") for kind in type(error).__mro__):
            raise GatewayError(
                400,
                "the body cannot be read (malformed framing)",
                [{"msg": echo(str(error), MAX_FRAMING_MESSAGE)}],
            ) from error
        raise
    if len(body) > limit:
        raise _too_large(limit)
    if length is not None and len(body) < length:
        # The client closed its side early: a cut body is never parsed.
        raise GatewayError(400, "the body is shorter than its Content-Length")
    return body


def _chunked(environ: WSGIEnvironment) -> bool:
    """Whether the request's body is framed by chunks (``Transfer-Encoding`` ends in chunked;
    gunicorn refuses any other last coding, so the request would not reach the app)."""
    value: str = environ.get("HTTP_TRANSFER_ENCODING", "")
    return value.rsplit(",", 1)[-1].strip().lower() == "chunked"


def _too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"the body exceeds the limit max_body_bytes={limit}")
