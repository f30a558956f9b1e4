"""A REST request body as TF Serving reads it: a ``gzip`` content coding is decompressed,
then the JSON parsed as strictly as RapidJSON does (repeated keys, lone surrogates).

TF Serving's HTTP server (``tensorflow_serving/util/net_http``) decompresses a request body
whose ``Content-Encoding`` holds ``gzip`` (``RequestHandlerOptions.auto_uncompress_input``,
true by default) up to ``ZLib::kMaxUncompressedBytes`` (100 MiB); any other coding is read
as it came. This server parsed a gzip body's compressed bytes as JSON and answered 400
``JSON Parse error``: a client TF Serving serves was told its valid JSON was invalid.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from serving.json_text import has_lone_surrogate
from serving.modelserver.errors import invalid_argument
from serving.numbers import json_integer

# TF Serving's bound (net_http/compression/gzip_zlib.h, kMaxUncompressedBytes): a body of
# ~100 kB on the wire that decompresses to gigabytes is refused once it passes this.
MAX_GZIP_BYTES = 100 * 1024 * 1024
GZIP_WINDOW = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip header and trailer
LONE_SURROGATE = "JSON Parse error: The surrogate pair in string is invalid."


class DecompressedTooLargeError(RequestEntityTooLarge):
    """A gzip body past :data:`MAX_GZIP_BYTES` once decompressed (413)."""

    description = f"The request body is larger than {MAX_GZIP_BYTES} bytes once decompressed"


def request_body(request: Request) -> bytes:
    """The body of ``request``, decompressed when its ``Content-Encoding`` holds ``gzip``.

    Raises DecompressedTooLargeError past :data:`MAX_GZIP_BYTES` decompressed, and
    INVALID_ARGUMENT (400) for a body that is no whole gzip stream, or more than one (several
    members, trailing bytes) (TF Serving then reads an empty body: "The document is empty",
    which names no cause).
    """
    data = request.get_data()
    coding = request.headers.get("Content-Encoding")
    if not coding or "gzip" not in coding.lower():  # codings are case-insensitive (RFC 9110)
        return data
    return decompressed(data)


def decompressed(data: bytes) -> bytes:
    """``data``, exactly one gzip member, decompressed: at most :data:`MAX_GZIP_BYTES`."""
    stream = zlib.decompressobj(GZIP_WINDOW)
    try:
        # max_length: never more than the bound plus one byte in memory, whatever the ratio
        body = stream.decompress(data, MAX_GZIP_BYTES + 1)
    except zlib.error as error:
        raise invalid_argument(f"The request body is not valid gzip ({error})") from error
    if len(body) > MAX_GZIP_BYTES:
        raise DecompressedTooLargeError()
    if not stream.eof:
        raise invalid_argument("The request body is not valid gzip (the stream is cut short)")
    if stream.unused_data:
        # A second gzip member (RFC 1952 section 2.2 allows a series; `gzip -d` joins them)
        # or trailing bytes were dropped and the first member answered as the whole body: a
        # request other than the one sent. TF Serving's ZLib fails on input left after the
        # stream's end (Z_DATA_ERROR: an empty body, "The document is empty"), so a client
        # this server answers is answered alike by TF Serving.
        raise invalid_argument(
            "The request body is not valid gzip (bytes after the end of its first member: "
            "send one gzip member)"
        )
    return body


class _DuplicateKeyError(ValueError):
    """An object of the body names a key twice."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKeyError(key)
        check_text(key)
        found[key] = value
    return found


def check_text(text: str) -> None:
    """INVALID_ARGUMENT for a string holding a lone surrogate (``"\\ud800"``): RapidJSON
    refuses the document (TF Serving's parse), Python's parser let it through, and echoed in
    a message it became a lone surrogate escape in the answer, which strict parsers refuse."""
    if has_lone_surrogate(text):
        raise invalid_argument(LONE_SURROGATE)


# Built once: json.loads with a hook builds a decoder per call. json_integer: an id of
# thousands of digits is refused as no int32 (400), not a 500.
_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_int=json_integer)


def parse_json_body(data: bytes) -> Any:
    """The body as JSON; 400 for a body that is empty, no JSON, or repeats a key in an object.

    A repeated key is refused (RFC 8259 section 4: parsers disagree on which one counts):
    TF Serving's RapidJSON finds the first ``instances``, ``inputs`` or ``signature_name``
    and appends every copy of a key within an instance, while Python's parser keeps the last,
    so answering would read another request than TF Serving does.
    """
    if not data.strip():
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        # What json.loads does with bytes (UTF-8, or UTF-16/32 told by their first bytes)
        return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except _DuplicateKeyError as error:
        key = json.dumps(str(error))[:66]
        raise invalid_argument(f"JSON Parse error: an object repeats the key {key}") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid_argument(f"JSON Parse error: Invalid value ({error})") from error
    except RecursionError as error:  # deeper than Python's parser goes: the client's JSON
        raise invalid_argument("JSON Parse error: the document is nested too deeply") from error
