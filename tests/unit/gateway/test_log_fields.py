"""``log_fields``: the access line written without a LogRecord is logging's line, byte for byte."""

from __future__ import annotations

import io
import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from serving.gateway.logs import CURRENT_REQUEST_ID, JsonFormatter, log_fields

FIELDS = {"method": "POST", "path": "/v1/qa", "status": 200, "duration_ms": 1.25, "version": "3"}


@pytest.fixture
def logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """A fresh ``<parent>.access`` logger whose parent writes JSON lines to a StringIO."""
    monkeypatch.setattr(time, "time", lambda: 1764470400.0427)  # one instant for both paths
    parent = logging.getLogger(f"test-log-fields-{uuid.uuid4().hex}")
    parent.setLevel(logging.INFO)
    parent.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(JsonFormatter())
    parent.addHandler(handler)
    token = CURRENT_REQUEST_ID.set("req-1")
    yield parent.getChild("access")
    CURRENT_REQUEST_ID.reset(token)
    parent.removeHandler(handler)


def _only_own_handler(logger: logging.Logger) -> logging.StreamHandler[Any]:
    """The parent's JSON handler, alone: pytest attaches its capture handlers to every
    logger that does not propagate (they would send each line through logging's path)."""
    assert logger.parent is not None
    logger.parent.handlers = logger.parent.handlers[:1]
    handler = logger.parent.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    return handler


def _lines(logger: logging.Logger) -> list[str]:
    assert logger.parent is not None
    handler = logger.parent.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    lines: list[str] = handler.stream.getvalue().splitlines()
    return lines


def _count_records(monkeypatch: pytest.MonkeyPatch) -> list[logging.LogRecord]:
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(factory(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(logging, "_logRecordFactory", counting)
    return made


def test_the_direct_line_is_the_line_logging_writes(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _count_records(monkeypatch)
    _only_own_handler(logger)
    log_fields(logger, logging.INFO, "%s %s %d", ("POST", "/v1/qa", 200), FIELDS)
    assert made == []  # written without a LogRecord
    logger.addFilter(lambda record: True)  # any filter: logging's own path
    log_fields(logger, logging.INFO, "%s %s %d", ("POST", "/v1/qa", 200), FIELDS)
    assert len(made) == 1
    direct, by_logging = _lines(logger)
    assert direct == by_logging
    assert direct.startswith('{"time": "2025-11-30T02:40:00.042Z", "level": "INFO", "logger": ')
    assert direct.endswith(
        '"message": "POST /v1/qa 200", "request_id": "req-1", "method": "POST", '
        '"path": "/v1/qa", "status": 200, "duration_ms": 1.25, "version": "3"}'
    )


@pytest.mark.parametrize("change", ["other_formatter", "handler_filter", "disabled", "level"])
def test_any_other_set_up_goes_through_logging(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    made = _count_records(monkeypatch)
    handler = _only_own_handler(logger)
    if change == "other_formatter":
        handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
    elif change == "handler_filter":
        handler.addFilter(lambda record: False)
    elif change == "disabled":
        logger.disabled = True
    else:
        handler.setLevel(logging.WARNING)
    log_fields(logger, logging.INFO, "%s %s %d", ("POST", "/v1/qa", 200), FIELDS)
    expected = {"other_formatter": [f"{os.getpid()} POST /v1/qa 200"]}
    assert _lines(logger) == expected.get(change, [])
    assert len(made) == 1  # a LogRecord, as logging makes it


def test_a_failing_stream_is_reported_by_logging(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler = _only_own_handler(logger)
    handler.setStream(Broken())
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    log_fields(logger, logging.INFO, "%s %s %d", ("POST", "/v1/qa", 200), FIELDS)
    assert [record.getMessage() for record in reported] == ["POST /v1/qa 200"]
