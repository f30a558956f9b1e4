"""JSON log lines carrying the request id of the request being answered."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

LOGGER_NAME = "serving.gateway"
# The id of the request being answered in this thread or greenlet (set and reset by
# serving.gateway.exchange for both ways a request is answered: Flask's hooks, the fast path).
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


class PerSecond:
    """``render(second)`` of a whole second since the epoch, rendered once per second (a log
    line's time, the Date header: formatting a date is most of their cost at high rates)."""

    __slots__ = ("_last", "_render")

    def __init__(self, render: Callable[[int], str]) -> None:
        self._render = render
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, second: int) -> str:
        """The rendered ``second``: the last one's text when it is the same second."""
        last = self._last
        if last[0] != second:
            last = (second, self._render(second))
            self._last = last  # a tuple: threads read either the old pair or the new one
        return last[1]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    # One encoder for every line (json.dumps with `default` builds a new one per call).
    _encoder = json.JSONEncoder(default=str)
    _second = PerSecond(lambda second: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        return self.line(
            record.created,
            record.msecs,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "fields", {}),
            self.formatException(record.exc_info) if record.exc_info else None,
        )

    def line(
        self,
        created: float,
        msecs: float,
        level: str,
        name: str,
        message: str,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        """One line's JSON (no newline): time (``created``, seconds since the epoch, UTC, and
        ``msecs`` its milliseconds), level, logger name, message, the current request's id,
        then ``fields`` (a field named like one of those replaces its value in place), then
        ``exception`` (a formatted traceback) if given."""
        entry: dict[str, object] = {
            "time": f"{self._second(int(created))}.{int(msecs):03d}Z",
            "level": level,
            "logger": name,
            "message": message,
        }
        request_id = CURRENT_REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(fields)
        if exception is not None:
            entry["exception"] = exception
        return self._encoder.encode(entry)


def direct_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The gateway's own JSON handler when an INFO line of ``logger`` would reach it and
    nothing else (no filter or handler of its own, propagating to the gateway's logger, which
    holds that handler alone and does not propagate), else None: then a line can be written
    to it without a ``LogRecord`` (:func:`write_line`); any other logging configuration an
    operator made goes through ``logging`` as usual."""
    parent = logger.parent
    if (
        logger.handlers
        or logger.filters
        or not logger.propagate
        or parent is None
        or parent.name != LOGGER_NAME
        or parent.filters
        or parent.propagate
        or len(parent.handlers) != 1
    ):
        return None
    handler = parent.handlers[0]
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or not isinstance(handler.formatter, JsonFormatter)
    ):
        return None
    return handler


def write_line(
    handler: logging.StreamHandler[Any], name: str, message: str, fields: dict[str, object]
) -> None:
    """What ``handler`` writes for an INFO record of logger ``name`` with ``message`` and
    ``fields`` (:meth:`JsonFormatter.line`), without making the record: ``LogRecord`` reads the
    process id (a system call), the thread and the process names, and ``Logger.handle`` walks
    filters and handlers, ~5% of a qa answer's CPU with its line (loadtests/README.md, round
    17). Errors are the handler's (``handleError``), as in ``StreamHandler.emit``."""
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter)  # direct_handler's choice
    now = time.time()
    text = formatter.line(now, (now - int(now)) * 1000, "INFO", name, message, fields)
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(text + handler.terminator)
        stream.flush()
    except Exception:
        handler.handleError(logging.LogRecord(name, logging.INFO, "", 0, message, None, None))
    finally:
        handler.release()


def configure_logging(level: str) -> None:
    """Send the gateway's logs to stderr as JSON (once per process)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Our handler writes every line; the root logger (gunicorn, pytest) would repeat it.
    logger.propagate = False
