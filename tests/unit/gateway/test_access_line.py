"""The access line written without a LogRecord (``JsonLinesHandler.info_line``, at once or
held) is the line ``logging`` writes, held lines keep the log's order, and an operator's own
logging configuration still goes through ``logging``."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import pytest

from serving.gateway.exchange import ACCESS_LOGGER, Exchange, record
from serving.gateway.logs import (
    CURRENT_REQUEST_ID,
    LOGGER_NAME,
    JsonLinesHandler,
    direct_handler,
)
from serving.gateway.metrics import GatewayMetrics


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """The gateway logger's handlers, level and propagation, restored afterwards; the test
    makes it hold only a JSON handler on a string stream (:func:`_shipped`)."""
    gateway = logging.getLogger(LOGGER_NAME)
    saved = (gateway.handlers[:], gateway.level, gateway.propagate, ACCESS_LOGGER.filters[:])
    yield io.StringIO()
    gateway.handlers[:], level, gateway.propagate, ACCESS_LOGGER.filters[:] = saved
    gateway.setLevel(level)


def _shipped(text: io.StringIO, hold_seconds: float = 0) -> JsonLinesHandler:
    """The gateway logger as configure_logging leaves it, writing to ``text`` (set in the
    test itself: pytest adds its capture handlers when the test starts)."""
    gateway = logging.getLogger(LOGGER_NAME)
    handler = JsonLinesHandler(text)
    handler.hold_for(hold_seconds)
    gateway.handlers[:] = [handler]
    gateway.setLevel(logging.INFO)
    gateway.propagate = False
    return handler


def _line(metrics: GatewayMetrics, text: io.StringIO) -> dict[str, object]:
    exchange = Exchange("req-1")
    exchange.model, exchange.version = "qa", "3"
    text.seek(0)
    text.truncate()
    record(metrics, exchange, "/v1/qa", "POST", "/v1/qa", 200, 0.00251)
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        handler.flush()  # a held line
    lines = text.getvalue().splitlines()
    assert len(lines) == 1
    entry: dict[str, object] = json.loads(lines[0])
    assert isinstance(entry.pop("time"), str)  # the clock moved between the two lines
    return entry


@pytest.mark.parametrize("hold_seconds", [0, 3600])
@pytest.mark.parametrize("current", [None, "other-request"])
def test_the_direct_line_is_the_line_logging_writes(
    stream: io.StringIO, current: str | None, hold_seconds: float
) -> None:
    metrics = GatewayMetrics()
    _shipped(stream, hold_seconds)
    token = CURRENT_REQUEST_ID.set(current)
    try:
        assert direct_handler(ACCESS_LOGGER) is not None  # the shipped configuration
        direct = _line(metrics, stream)
        ACCESS_LOGGER.addFilter(lambda _record: True)  # an operator's filter: logging's path
        assert direct_handler(ACCESS_LOGGER) is None
        logged = _line(metrics, stream)
    finally:
        CURRENT_REQUEST_ID.reset(token)
    assert direct == logged
    assert list(direct) == list(logged)  # the same keys in the same order
    assert direct["message"] == "POST /v1/qa 200" and direct["request_id"] == "req-1"


def test_an_operators_handler_or_level_keeps_logging(stream: io.StringIO) -> None:
    gateway = logging.getLogger(LOGGER_NAME)
    handler = _shipped(stream)
    assert direct_handler(ACCESS_LOGGER) is handler
    gateway.handlers[0].setLevel(logging.WARNING)
    assert direct_handler(ACCESS_LOGGER) is None
    gateway.handlers[0].setLevel(logging.NOTSET)
    gateway.addHandler(logging.NullHandler())
    assert direct_handler(ACCESS_LOGGER) is None


def test_held_lines_are_written_together_before_any_other_line(stream: io.StringIO) -> None:
    handler = _shipped(stream, hold_seconds=3600)
    writes: list[str] = []
    stream.write = writes.append  # type: ignore[method-assign,assignment]
    metrics = GatewayMetrics()
    for number in range(3):
        record(metrics, Exchange(f"req-{number}"), "/v1/qa", "POST", "/v1/qa", 200, 0.001)
    assert writes == []  # held
    logging.getLogger(f"{LOGGER_NAME}.registry").warning("a later line")
    assert len(writes) == 2  # the three held lines in one write, then the warning
    held = [json.loads(line) for line in writes[0].splitlines()]
    assert [line["request_id"] for line in held] == ["req-0", "req-1", "req-2"]
    assert json.loads(writes[1])["message"] == "a later line"
    assert handler is direct_handler(ACCESS_LOGGER)


def test_held_lines_are_written_within_the_interval(stream: io.StringIO) -> None:
    _shipped(stream, hold_seconds=0.02)
    record(GatewayMetrics(), Exchange("req-9"), "/v1/qa", "POST", "/v1/qa", 200, 0.001)
    deadline = time.monotonic() + 10  # bounded: the flusher runs every 0.02 s
    while "req-9" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert json.loads(stream.getvalue())["request_id"] == "req-9"
