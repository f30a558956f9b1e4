"""Errors with TF Serving's status codes, and its mapping of codes to HTTP statuses."""

from __future__ import annotations

import grpc

# What a client hears of a bug (an exception's text may name server paths): details are logged
INTERNAL_MESSAGE = "Internal error; see the model server log"
# A request id longer than this is cut in the log (the gateway sends up to 128 characters, a
# merged call its members' ids joined by commas).
MAX_LOGGED_ID = 4096


def logged_request_id(request_id: str | None) -> str:
    """A client's ``x-request-id`` as a log line shows it: quoted, cut to
    :data:`MAX_LOGGED_ID` characters, escaped (``ascii``: no newline or terminal escape of a
    client splits or rewrites the text log line), ``'-'`` when none was sent."""
    return ascii(request_id[:MAX_LOGGED_ID]) if request_id else "-"


# TF Serving's REST handler maps canonical status codes to HTTP statuses this way.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


class ServingError(Exception):
    """A request failure carrying the canonical status code TF Serving would return."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status TF Serving's REST API uses for this code."""
        return HTTP_STATUS.get(self.code, 500)


def from_code_number(number: int, message: str) -> ServingError:
    """A ServingError for a canonical code number (as TensorFlow's OpError.error_code)."""
    codes = {code.value[0]: code for code in grpc.StatusCode}
    return ServingError(codes.get(number, grpc.StatusCode.UNKNOWN), message)


def invalid_argument(message: str) -> ServingError:
    """INVALID_ARGUMENT: the request is malformed (bad input name, type or shape)."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    """NOT_FOUND: no such model or version."""
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    """FAILED_PRECONDITION: e.g. the signature named in the request does not exist."""
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def deadline_exceeded(message: str) -> ServingError:
    """DEADLINE_EXCEEDED (504 over REST)."""
    return ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, message)


def unavailable(message: str) -> ServingError:
    """UNAVAILABLE: the batching queue is full or the server is shutting down."""
    return ServingError(grpc.StatusCode.UNAVAILABLE, message)
