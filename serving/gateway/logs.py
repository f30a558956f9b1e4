"""JSON log lines carrying the request id of the request being answered."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, cast

LOGGER_NAME = "serving.gateway"
# The id of the request being answered in this thread or greenlet (set and reset by
# serving.gateway.exchange for both ways a request is answered: Flask's hooks, the fast path).
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)
Fields = Mapping[str, object]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    # One encoder for every line (json.dumps with `default` builds a new one per call), and
    # the formatted second of the last line (strftime is most of a line's cost at high rates).
    _encoder = json.JSONEncoder(default=str)
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        exception = self.formatException(record.exc_info) if record.exc_info else None
        fields = getattr(record, "fields", {})
        message = record.getMessage()
        return self.render(
            record.created, record.levelname, record.name, message, fields, exception
        )

    def render(
        self,
        created: float,
        level: str,
        name: str,
        message: str,
        fields: Mapping[str, object],
        exception: str | None = None,
    ) -> str:
        """The JSON line of a record with these attributes (``created``: ``time.time()``)."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached  # a tuple: threads read either the old or the new one
        milliseconds = int((created - second) * 1000)  # LogRecord.msecs, as an int
        entry: dict[str, object] = {
            "time": f"{cached[1]}.{milliseconds:03d}Z",
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


def _plain_json_handlers(logger: logging.Logger, level: int) -> list[logging.StreamHandler[Any]]:
    """The handlers a record of ``logger`` at ``level`` reaches (``Logger.callHandlers``' walk),
    if each is a plain ``StreamHandler`` with a :class:`JsonFormatter` and no logger or handler
    on the way has a filter; else (or none) an empty list."""
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    if logger.disabled:
        return []
    while current is not None:
        if current.filters:
            return []
        for handler in current.handlers:
            if (
                type(handler) is not logging.StreamHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                return []
            if level >= handler.level:
                found.append(handler)
        current = current.parent if current.propagate else None
    return found


def log_fields(
    logger: logging.Logger, level: int, template: str, args: tuple[object, ...], fields: Fields
) -> None:
    """Log ``template % args`` with ``fields`` (``extra={"fields": ...}``), as
    ``logger.makeRecord`` + ``logger.handle`` write it, and write the same lines directly when
    every handler the record would reach is a plain JSON ``StreamHandler`` (the gateway's own
    set-up): the JSON line is then rendered once, without a ``LogRecord`` (its pid, thread,
    module and name reads) and logging's per-handler dispatch (issue 9: one access line per
    request). Callers check ``logger.isEnabledFor(level)`` first.
    """
    handlers = _plain_json_handlers(logger, level)
    if not handlers:
        logger.handle(_record(logger, level, template, args, fields))
        return
    formatter = cast(JsonFormatter, handlers[0].formatter)
    message = template % args
    line = formatter.render(time.time(), logging.getLevelName(level), logger.name, message, fields)
    for handler in handlers:
        if not _write_line(handler, line):
            # The stream failed: logging's own path writes again and reports it (handleError).
            handler.handle(_record(logger, level, template, args, fields))


def _record(
    logger: logging.Logger, level: int, template: str, args: tuple[object, ...], fields: Fields
) -> logging.LogRecord:
    # makeRecord, not Logger.info: its findCaller walks the stack for a file and line that
    # the JSON lines do not show.
    return logger.makeRecord(
        logger.name, level, "", 0, template, args, None, extra={"fields": fields}
    )


def _write_line(handler: logging.StreamHandler[Any], line: str) -> bool:
    """``StreamHandler.emit`` + ``flush`` of an already formatted line; False if it failed."""
    handler.acquire()
    try:
        stream = handler.stream
        stream.write(line + handler.terminator)
        if stream and hasattr(stream, "flush"):
            stream.flush()
    except RecursionError:
        raise
    except Exception:
        return False
    finally:
        handler.release()
    return True


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
