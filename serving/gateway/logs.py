"""JSON log lines carrying the request id of the request being answered."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar

LOGGER_NAME = "serving.gateway"
# The id of the request being answered in this thread or greenlet (set and reset by
# serving.gateway.exchange for both ways a request is answered: Flask's hooks, the fast path).
CURRENT_REQUEST_ID: ContextVar[str | None] = ContextVar("gateway_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    # One encoder for every line (json.dumps with `default` builds a new one per call), and
    # the formatted second of the last line (strftime is most of a line's cost at high rates).
    _encoder = json.JSONEncoder(default=str)
    _second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        """Render a record as JSON."""
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
            self._second = cached  # a tuple: threads read either the old or the new one
        entry: dict[str, object] = {
            "time": f"{cached[1]}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = CURRENT_REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry)


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
