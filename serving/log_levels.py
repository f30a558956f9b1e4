"""The log level names both servers take (``GATEWAY_LOG_LEVEL``, the model server's
``--log_level``), read once at start.

``logging.Logger.setLevel`` raises on an unknown name only when it runs: in the gateway that
was each worker's boot (a traceback per worker, then gunicorn's "Worker failed to boot"), in
the model server a traceback from ``logging.basicConfig``. gunicorn reads the same variable
for its own lines and takes any text, falling back to ``info`` without a word (``warn``
included, which ``logging`` knows). The names are gunicorn's and ``logging``'s common ones.
"""

from __future__ import annotations

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(text: str) -> str:
    """``text`` as one of :data:`LEVELS` (any case, surrounding spaces dropped); ValueError
    naming them otherwise."""
    level = text.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"must be one of {', '.join(LEVELS)} (any case), got {text!r}")
    return level
