"""gunicorn's own log lines (master and workers: booting, a refused request, a killed worker)
in the gateway's JSON line format.

The gateway's stderr is read as one JSON object per line (README, "Metrics"); gunicorn wrote
its lines there in its text format (``[2026-11-30 15:55:18 +0000] [4765] [WARNING] Invalid
request from ip=...``), which a log shipper reading JSON lines cannot parse. gunicorn has no
formatter setting (only whole ``logging`` configurations), so its logger class is kept and
its handlers get :class:`serving.gateway.logs.JsonFormatter` after each setup (gunicorn runs
setup again on a reload, with new handlers).
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from serving.gateway.logs import JsonFormatter


class JsonLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger whose error log lines are JSON (``logger_class`` in gunicorn_conf)."""

    error_log: Any  # gunicorn's (untyped): the "gunicorn.error" logging.Logger

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup, then the JSON formatter on each handler it installed."""
        super().setup(cfg)
        formatter = JsonFormatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)
