"""gunicorn's own log lines (master and workers: booting, a refused request, a killed worker)
in the gateway's JSON line format.

The gateway's stderr is read as one JSON object per line (README, "Metrics"); gunicorn wrote
its lines there in its text format (``[2026-11-30 15:55:18 +0000] [4765] [WARNING] Invalid
request from ip=...``), which a log shipper reading JSON lines cannot parse. gunicorn has no
formatter setting (only whole ``logging`` configurations), so its logger class is kept and
its handlers get :class:`serving.gateway.logs.JsonFormatter` after each setup (gunicorn runs
setup again on a reload, with new handlers).

Its lines go through another handler than the gateway's, to the same stderr: a worker's
access lines held for up to ``GATEWAY_ACCESS_LOG_FLUSH_SECONDS`` came after gunicorn lines
logged later (``Worker exiting`` before the last requests' lines), so each gunicorn line
first writes the held lines of the process (:class:`GatewayLinesFirst`).
"""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from serving.gateway.logs import LOGGER_NAME, JsonFormatter, JsonLinesHandler


class GatewayLinesFirst(logging.Filter):
    """Lets every record through after writing the access lines the gateway's handlers hold
    (none in gunicorn's master), so the log keeps its order across the two handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Write the held lines; keep ``record``."""
        for handler in logging.getLogger(LOGGER_NAME).handlers:
            if isinstance(handler, JsonLinesHandler):
                handler.flush()
        return True


_LINES_FIRST = GatewayLinesFirst()  # one instance: addFilter skips it on a reload's setup


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger whose error log lines are JSON (``logger_class`` in gunicorn_conf)."""

    error_log: Any  # gunicorn's (untyped): the "gunicorn.error" logging.Logger

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup, then the JSON formatter on each handler it installed."""
        super().setup(cfg)
        formatter = JsonFormatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
        self.error_log.addFilter(_LINES_FIRST)
