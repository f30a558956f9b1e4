"""One exception type for every failure a client may see, and the backend failure kinds."""

from __future__ import annotations

import difflib
import enum
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from werkzeug.exceptions import HTTPException

from serving.gateway.logs import LOGGER_NAME

Detail = dict[str, Any]
# Client text echoed in an answer (a model name from the URL, a query or body key) is cut to
# this many characters: an error body must not grow with the input or carry it whole.
MAX_ECHO_CHARS = 64
MAX_LISTED_MODELS = 20  # routed names an unknown model's 404 lists (all: GET /v1/models)
# Headers of werkzeug's HTTP errors that belong to the status: 405's Allow, and 416's
# "Content-Range: bytes */LENGTH" (RFC 9110 section 15.5.17), from send_file's range checks.
KEPT_ERROR_HEADERS = frozenset({"Allow", "Content-Range"})


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` made fit to be echoed to the client that sent it.

    At most ``limit`` characters of it (``...`` marks a cut), with each character that is not
    printable (control, format, line and paragraph separators; ``str.isprintable``) written
    as its Python escape (``\\n``, ``\\x00``, ``\\u200b``), as ``repr`` does.
    """
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in cut)
    return cut + "..." if len(text) > limit else cut


class GatewayError(Exception):
    """A failure answered as ``{"error": message, "detail": [...]}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: Sequence[Detail] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = list(detail)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        return {"error": self.message, "detail": self.detail}


def retry_later(
    message: str, retry_after_seconds: int, detail: Sequence[Detail] = ()
) -> GatewayError:
    """A 503 for a state of the server's, not a fault of the client's, saying when to try
    again (``Retry-After`` in seconds, RFC 9110 section 10.2.3)."""
    return GatewayError(503, message, detail, {"Retry-After": str(retry_after_seconds)})


class BackendFailure(enum.Enum):
    """What went wrong talking to the model server, independent of the protocol."""

    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    INTERNAL = "internal"
    # The gateway's request is past a message limit (the gateway's own or the model
    # server's): the client's request is too large, not the server unavailable.
    TOO_LARGE = "too_large"


class BackendError(Exception):
    """A backend call failed; ``message`` is the server's text, logged but never returned."""

    def __init__(
        self,
        failure: BackendFailure,
        message: str,
        retryable: bool = False,
        limit: tuple[str, int] | None = None,
    ) -> None:
        super().__init__(f"{failure.value}: {message}")
        self.failure = failure
        self.message = message
        # Only a true UNAVAILABLE (server down, connection refused) is worth retrying.
        self.retryable = retryable
        # TOO_LARGE: the limit passed, (name, bytes), when the failure names it.
        self.limit = limit


def limit_error(location: Sequence[str | int], limit_name: str, limit: int, actual: int) -> Detail:
    """A 422 detail entry for an input that exceeds a configured limit."""
    return _limit_detail(
        location, limit_name, limit, f"{actual} exceeds the limit {limit_name}={limit}"
    )


def _limit_detail(
    location: Sequence[str | int], limit_name: str, limit: int, message: str
) -> Detail:
    """The one shape of a ``limit_exceeded`` detail entry: where, what and which limit."""
    return {
        "loc": list(location),
        "msg": message,
        "type": "limit_exceeded",
        "limit": {"name": limit_name, "value": limit},
    }


def backend_to_gateway(error: BackendError, retry_after_seconds: int) -> GatewayError:
    """Map a backend failure to the client-facing status (the raw message stays in logs).

    UNAVAILABLE -> 503 (Retry-After), DEADLINE_EXCEEDED -> 504, NOT_FOUND -> 404, TOO_LARGE
    -> 413 naming the limit (RFC 9110 section 15.5.14: the request is larger than the
    server will process; a retry of the same request fails alike), anything else
    (INVALID_ARGUMENT included: the client's input was validated before the call) -> 502.
    """
    if error.failure is BackendFailure.TOO_LARGE:
        return too_large_error(error.limit)
    if error.failure is BackendFailure.UNAVAILABLE:
        return retry_later("the model server is unavailable; retry later", retry_after_seconds)
    if error.failure is BackendFailure.DEADLINE_EXCEEDED:
        return GatewayError(504, "the model server did not answer in time")
    if error.failure is BackendFailure.NOT_FOUND:
        return GatewayError(404, "the requested model version is not served")
    if error.failure is BackendFailure.INVALID_ARGUMENT:
        # The ids were built by the gateway from an input that passed validation: a version
        # that rejects them does not fit its spec, which is no fault of the client's.
        return GatewayError(502, "the model server rejected the inputs the gateway built")
    return GatewayError(502, "the model server failed")


def unknown_model(name: str, served: Iterable[str]) -> GatewayError:
    """404 for a model name the gateway does not route (the ``error`` text as before); the
    detail names the closest routed name (``difflib.get_close_matches``' default cutoff 0.6)
    and where every routed model is listed. Found by a new user's pass: a typo (``reviws``)
    was a bare "unknown model", whatever the routed models' names.
    """
    names = sorted(served)
    # A name past the echo limit is no typo of a routed one (and difflib's cost grows with it).
    close = difflib.get_close_matches(name, names, n=1) if len(name) <= MAX_ECHO_CHARS else []
    hint = f"did you mean '{close[0]}'? " if close else ""
    listed = ", ".join(names[:MAX_LISTED_MODELS]) + (
        ", ..." if len(names) > MAX_LISTED_MODELS else ""
    )
    detail = [{"msg": f"{hint}routed models: {listed or 'none'} (GET /v1/models lists them)"}]
    return GatewayError(404, f"unknown model '{echo(name)}'", detail)


def too_large_error(limit: tuple[str, int] | None) -> GatewayError:
    """The 413 of a request whose model input is past a message limit ``(name, bytes)`` of
    the gateway or the model server (None: the server named no limit)."""
    message = "the request is too large for the model server; send fewer or shorter texts"
    if limit is None:
        return GatewayError(413, message)
    name, value = limit
    detail = _limit_detail(
        ["body"],
        name,
        value,
        f"the model input built from the body exceeds the limit {name}={value} bytes",
    )
    return GatewayError(413, message, [detail])


def http_error(error: HTTPException) -> GatewayError:
    """A werkzeug HTTP error (404, 405, 413, 416, 429, ...) in the gateway's error shape.

    Only the headers that belong to the status are kept (:data:`KEPT_ERROR_HEADERS`).
    """
    status = error.code or 500
    headers = {key: value for key, value in error.get_headers() if key in KEPT_ERROR_HEADERS}
    message = {
        413: "the body exceeds the limit max_body_bytes",
        429: f"rate limit exceeded: {error.description}",
    }.get(status, error.description or "")
    return GatewayError(status, message or str(error.name), headers=headers)


def unexpected_error(error: Exception) -> GatewayError:
    """A 500 ``internal error`` for a fault of ours; the traceback is logged (with the request
    id), never sent. Call it inside the ``except`` block that caught ``error``."""
    logging.getLogger(LOGGER_NAME).exception("unexpected error")
    return GatewayError(500, "internal error")
