"""One request's state (id, model, version, start time) and what every answer leaves behind:
the ``X-Request-ID`` header, the request metrics and the JSON access line.

Both ways a request is answered share this: Flask's hooks (``serving.gateway.app``) and the
prediction routes' direct WSGI path (``serving.gateway.fastpath``). The state lives in a
``ContextVar``, so it is per thread (gthread) and per greenlet (gevent), and the log
formatter reads the request id from it without Flask.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from typing import Any

from serving.gateway.logs import CURRENT_REQUEST_ID, LOGGER_NAME, direct_handler
from serving.gateway.metrics import GatewayMetrics

ACCESS_LOGGER = logging.getLogger(f"{LOGGER_NAME}.access")
MAX_REQUEST_ID_LENGTH = 128
# A merged call forwards at most this many characters of its members' ids (forwarded_ids):
# with the call's other metadata it stays well under gRPC's 8 KB metadata limit.
MAX_FORWARDED_IDS = 4096
# The endpoint label of a request that no route took (Flask found none, gunicorn refused it).
UNMATCHED = "unmatched"
# The status counted and logged for an answer the server could not write because the client
# had gone (reset the connection): nginx's 499 "client closed request"; HTTP has no code for
# an answer that was never delivered, and counting the status it would have had (a 200) hid
# every such client from the error rates.
CLIENT_CLOSED = 499


class Exchange:
    """The request being answered: when it started, its id, and the model and version that
    answered it (``""`` until known: metrics labels and access line fields)."""

    __slots__ = ("model", "request_id", "start", "version")

    def __init__(self, request_id: str) -> None:
        self.start = time.perf_counter()
        self.request_id = request_id
        self.model = ""
        self.version = ""


_CURRENT: ContextVar[Exchange | None] = ContextVar("gateway_exchange", default=None)
Tokens = tuple[Token[Exchange | None], Token[str | None]]


def request_id_from(given: str) -> str:
    """The client's ``X-Request-ID`` if it is 1..128 printable ASCII characters without a
    comma, else a new one (32 hex characters).

    The comma separates the ids a merged backend call forwards (``x-request-id: id1,id2``,
    :mod:`serving.gateway.coalescing`), and two header lines reach the app joined by one.
    """
    if (
        0 < len(given) <= MAX_REQUEST_ID_LENGTH
        and given.isprintable()
        and given.isascii()
        and "," not in given
    ):
        return given
    return uuid.uuid4().hex


def forwarded_ids(request_ids: Sequence[str]) -> str:
    """The ``x-request-id`` of a backend call made for ``request_ids`` (a merged call's
    members): the ids comma-separated, as many whole ones as fit in
    :data:`MAX_FORWARDED_IDS` characters, then ``+N`` for the ``N`` left out.

    gRPC servers refuse a call whose metadata passes 8 KB at random and every call past
    16 KB (grpc core's defaults, TF Serving's and the local model server's): 130 merged
    requests with 128-character ids made the call RESOURCE_EXHAUSTED for all of them.
    """
    kept: list[str] = []
    size = 0
    for request_id in request_ids:
        size += len(request_id) + (1 if kept else 0)
        if size > MAX_FORWARDED_IDS:
            return ",".join([*kept, f"+{len(request_ids) - len(kept)}"])
        kept.append(request_id)
    return ",".join(kept)


def begin(environ: dict[str, Any]) -> tuple[Exchange, Tokens]:
    """Start answering the request of ``environ``: its :class:`Exchange`, made current (the
    tokens undo that: :func:`end`)."""
    exchange = Exchange(request_id_from(environ.get("HTTP_X_REQUEST_ID", "")))
    return exchange, (_CURRENT.set(exchange), CURRENT_REQUEST_ID.set(exchange.request_id))


def end(tokens: Tokens) -> None:
    """Forget the current exchange (the one :func:`begin` returned the tokens with)."""
    _CURRENT.reset(tokens[0])
    CURRENT_REQUEST_ID.reset(tokens[1])


def current_exchange() -> Exchange | None:
    """The request being answered in this thread or greenlet, if any."""
    return _CURRENT.get()


def elapsed(exchange: Exchange) -> float:
    """Seconds since ``exchange`` started: taken when the answer is ready, before it is
    written (a write, and a lingering close after an early refusal, are the client's time)."""
    return time.perf_counter() - exchange.start


def delivered(status: int) -> int:
    """``status``, or :data:`CLIENT_CLOSED` when called while an ``OSError`` propagates: the
    server's write of the answer failed (the client reset or closed the connection).

    For a WSGI iterable's ``close``, which the server calls after writing the answer, in a
    ``finally`` around that write (PEP 3333; gunicorn's ``handle_request``, werkzeug's
    ``run_wsgi``), where the write's error is the exception being handled. It costs no system
    call: a client that closed cleanly (FIN) before the answer is not seen, since TCP accepts
    the first write after a FIN (the peer's reset comes back later).
    """
    return CLIENT_CLOSED if isinstance(sys.exc_info()[1], OSError) else status


def record(
    metrics: GatewayMetrics,
    exchange: Exchange,
    endpoint: str,
    method: str,
    path: str,
    status: int,
    seconds: float,
) -> None:
    """Count the answer (``gateway_requests_total``, latency ``seconds``: from the request's
    start until its answer was ready, :func:`elapsed`) and write its access line.

    ``endpoint`` is the matched route's rule (``/v1/models/<name>:predict``) or
    ``unmatched``; the access line has ``method``, ``path``, ``status``, ``duration_ms``,
    ``model``, ``version`` and ``request_id`` (the exchange's: the answer is recorded after it
    was written, when the request is no longer the current one).
    """
    model, version = exchange.model, exchange.version
    metrics.observe_request(endpoint, model, version, status, seconds)
    if ACCESS_LOGGER.isEnabledFor(logging.INFO):  # skip building the fields when not logged
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "model": model,
            "version": version,
            "request_id": exchange.request_id,
        }
        handler = direct_handler(ACCESS_LOGGER)
        if handler is not None:  # the shipped configuration: the same line, without a record
            handler.info_line(ACCESS_LOGGER.name, f"{method} {path} {status}", fields)
            return
        # makeRecord + handle: Logger.info's findCaller walks the stack for a file and line
        # that the JSON lines do not show.
        entry = ACCESS_LOGGER.makeRecord(
            ACCESS_LOGGER.name,
            logging.INFO,
            "",
            0,
            "%s %s %d",
            (method, path, status),
            None,
            extra={"fields": fields},
        )
        ACCESS_LOGGER.handle(entry)


def record_when_closed(
    metrics: GatewayMetrics,
    exchange: Exchange,
    endpoint: str,
    method: str,
    path: str,
    status: int,
    seconds: float,
) -> Callable[[], None]:
    """What a WSGI answer's ``close`` calls (the server calls it after writing the answer):
    :func:`record` with the status the answer was delivered with (:func:`delivered`: 499 if
    the write failed, the client had gone). Used by the fast path and by Flask's."""

    def close() -> None:
        record(metrics, exchange, endpoint, method, path, delivered(status), seconds)

    return close
