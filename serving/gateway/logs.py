"""JSON log lines carrying the request id of the request being answered."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from serving.gateway.holding import Held

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
            CURRENT_REQUEST_ID.get(),
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
        request_id: str | None,
        fields: dict[str, object],
        exception: str | None = None,
    ) -> str:
        """One line's JSON (no newline): time (``created``, seconds since the epoch, UTC, and
        ``msecs`` its milliseconds), level, logger name, message, the id of the request being
        answered when the line was logged (if any), then ``fields`` (a field named like one of
        those replaces its value in place), then ``exception`` (a formatted traceback) if
        given."""
        entry: dict[str, object] = {
            "time": f"{self._second(int(created))}.{int(msecs):03d}Z",
            "level": level,
            "logger": name,
            "message": message,
        }
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(fields)
        if exception is not None:
            entry["exception"] = exception
        return self._encoder.encode(entry)


# time, the current request's id, logger name, message, fields
HeldLine = tuple[float, str | None, str, str, dict[str, object]]


class JsonLinesHandler(logging.StreamHandler[Any]):
    """The gateway's handler: JSON lines (:class:`JsonFormatter`) to a stream.

    Lines given to :meth:`info_line` (the access lines) are written at once or held for up to
    ``GATEWAY_ACCESS_LOG_FLUSH_SECONDS`` and written together in one ``write``
    (``serving.gateway.holding``); any other line this handler writes goes after them, so
    the log keeps its order.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.setFormatter(JsonFormatter())
        assert self.lock is not None  # made by Handler.__init__ (createLock)
        # The handler's own lock: a held write and a record's emit (which logging calls
        # holding it) are one writer at a time, in order, and cannot deadlock each other.
        self._held: Held[HeldLine] = Held(0, self._write_lines, self.lock)

    def hold_for(self, seconds: float) -> None:
        """Hold :meth:`info_line`'s lines up to ``seconds`` from now on (0: none); what is
        held is written first, and a line given meanwhile is kept (the holder stays)."""
        if seconds != self._held.seconds:
            self._held.hold_for(seconds)

    def info_line(self, name: str, message: str, fields: dict[str, object]) -> None:
        """What this handler writes for an INFO record of logger ``name`` with ``message`` and
        ``fields``, without making the record: ``LogRecord`` reads the process id (a system
        call), the thread and the process names, and ``Logger.handle`` walks filters and
        handlers, ~5% of a qa answer's CPU with its line (loadtests/README.md, round 17). Its
        time and the current request's id are read now (the line may be written later)."""
        self._held.add((time.time(), CURRENT_REQUEST_ID.get(), name, message, fields))

    def emit(self, record: logging.LogRecord) -> None:
        """Write the held lines, then ``record``'s."""
        self._held.flush()
        super().emit(record)

    def flush(self) -> None:
        """Write the held lines and flush the stream."""
        self._held.flush()
        super().flush()

    def close(self) -> None:
        """Write the held lines; a line given after (by a request that found this handler
        just before an operator's ``dictConfig`` removed it) is written at once, not held
        in a handler nobody flushes any more."""
        self._held.hold_for(0)
        super().close()

    def _write_lines(self, lines: list[HeldLine]) -> None:
        """Write ``lines`` in one ``write``; an error is the handler's (``handleError``), as
        in ``StreamHandler.emit``."""
        formatter = self.formatter
        assert isinstance(formatter, JsonFormatter)  # set in __init__
        end = self.terminator
        parts: list[str] = []
        for now, current, name, message, fields in lines:
            try:
                parts.append(
                    formatter.line(
                        now, (now - int(now)) * 1000, "INFO", name, message, current, fields
                    )
                    + end
                )
            except Exception:  # a field JSON cannot hold: that line alone, as emit would
                self._failed(name, message)
        if not parts:
            return
        self.acquire()
        try:
            stream = self.stream
            stream.write("".join(parts))
            stream.flush()
        except Exception:
            self._failed(lines[0][2], lines[0][3])
        finally:
            self.release()

    def _failed(self, name: str, message: str) -> None:
        """``handleError`` for the INFO line of logger ``name`` with ``message`` (called
        while its exception is handled)."""
        self.handleError(logging.LogRecord(name, logging.INFO, "", 0, message, None, None))


def direct_handler(logger: logging.Logger) -> JsonLinesHandler | None:
    """The gateway's own handler when an INFO line of ``logger`` would reach it and nothing
    else (no filter or handler of its own, propagating to the gateway's logger, which holds
    that handler alone and does not propagate), else None: then a line can be given to it
    without a ``LogRecord`` (:meth:`JsonLinesHandler.info_line`); any other logging
    configuration an operator made goes through ``logging`` as usual."""
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
        type(handler) is not JsonLinesHandler
        or handler.filters
        or handler.level > logging.INFO
        or not isinstance(handler.formatter, JsonFormatter)
    ):
        return None
    return handler


def configure_logging(level: str, access_flush_seconds: float = 0.0) -> None:
    """Send the gateway's logs to stderr as JSON (one handler per process), its access lines
    held up to ``access_flush_seconds`` (:class:`JsonLinesHandler`)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        logger.addHandler(JsonLinesHandler(sys.stderr))
    for handler in logger.handlers:
        if isinstance(handler, JsonLinesHandler):
            handler.hold_for(access_flush_seconds)
    # Our handler writes every line; the root logger (gunicorn, pytest) would repeat it.
    logger.propagate = False
