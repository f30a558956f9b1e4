"""The checked values of ``gunicorn_conf.py``'s environment variables.

gunicorn reads its config file with ``exec``: an exception there was its "Failed to read
config file" and a traceback naming no variable. :class:`ConfigValues` turns each bad value
into a line of :attr:`ConfigValues.problems` and a safe stand-in instead, so that the config
prints every problem, one line each, before the master stops (exit code 2): the first alone
hid the next, found on the next start. Nothing here imports grpcio (the config sets
``GRPC_EXPERIMENTS`` before any worker imports it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from gunicorn.util import load_class

from serving.gateway import affinity
from serving.log_levels import log_level

# gevent (default): an event loop per worker, so a slow client costs a greenlet, not one of a
# few threads (50 clients dripping a byte every 2 s held every gthread thread: see
# loadtests/slow_clients.py). Both classes answer gunicorn's own errors in JSON.
WORKER_CLASSES = {
    "gevent": "serving.gateway.workers.GeventWorker",
    "gthread": "serving.gateway.workers.ThreadWorker",
}


class ConfigValues:
    """Reads of the config's variables; what was wrong with them in :attr:`problems`."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def whole(self, text: str, name: str, minimum: int, maximum: int | None = None) -> int:
        """``text`` as an integer from ``minimum`` (to ``maximum``), else ``minimum`` and a
        problem.

        ``GATEWAY_WORKERS=--4`` was gunicorn's traceback (found by the adversarial pass
        breaknew6b), and ``GATEWAY_WORKERS=0`` started a master with no worker that listened
        on the port and never answered.
        """
        value = text.strip()
        if (
            re.fullmatch("-?[0-9]+", value)
            and int(value) >= minimum
            and (maximum is None or int(value) <= maximum)
        ):
            return int(value)
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        self.problems.append(f"{name} must be a whole number {bound}, got {text!r}")
        return minimum

    def worker_class(self, kind: str) -> str:
        """The class gunicorn loads for ``GATEWAY_WORKER_CLASS``; a name it cannot load is a
        problem (it was gunicorn's "class uri 'foo' invalid or not found" with a traceback,
        exit 1). gunicorn loads the class in the master too, so nothing extra is imported."""
        path = WORKER_CLASSES.get(kind, kind)
        try:
            load_class(path)
        except (RuntimeError, AttributeError):  # no such module or name; AttributeError: class
            self.problems.append(
                f"GATEWAY_WORKER_CLASS must be {' or '.join(WORKER_CLASSES)} or a gunicorn "
                f"worker class (its import path), got {kind!r}"
            )
        return path

    def bind_host(self, text: str) -> str:
        """``GATEWAY_BIND_HOST`` as the host part of gunicorn's ``bind`` (``HOST:PORT``): an
        IPv6 address in brackets (``::`` -> ``[::]``), a name or IPv4 address as given; a
        host holding a port is a problem.

        gunicorn splits ``bind`` at its last colon: ``::`` (every IPv6 interface) stopped it
        with "Error: '' is not a valid port number" naming no setting, and ``127.0.0.1:80``
        listened on port 80 instead of ``GATEWAY_PORT``.
        """
        host = text.strip()
        try:
            return f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            pass
        inner = host[1:-1] if host.startswith("[") and host.endswith("]") else None
        if inner is not None and ":" in inner:
            return host  # already bracketed
        if host and ":" not in host and "[" not in host and "]" not in host:
            return host
        self.problems.append(
            "GATEWAY_BIND_HOST must be a host name or an IP address without a port "
            f"(GATEWAY_PORT sets it), got {text!r}"
        )
        return "127.0.0.1"

    def log_level(self, text: str) -> str:
        """``GATEWAY_LOG_LEVEL`` for gunicorn's own lines (the app checks it again for its
        own): gunicorn took any text and logged at ``info`` for one it did not know, and each
        worker then failed to boot on it with a traceback."""
        try:
            return log_level(text).lower()
        except ValueError as error:
            self.problems.append(f"GATEWAY_LOG_LEVEL {error}")
            return "info"

    def cpu_affinity(self, environ: Mapping[str, str]) -> str:
        """``GATEWAY_CPU_AFFINITY``; another value is a problem (it was gunicorn's "Failed
        to read config file" and a traceback)."""
        try:
            return affinity.affinity_mode(dict(environ))
        except ValueError as error:
            self.problems.append(str(error))
            return "off"
