"""What the gateway says of the settings its environment gives: ``GATEWAY_*`` variables no
setting reads (a misspelt name keeps its default without a word), and pydantic's refusals of
:class:`serving.gateway.settings.GatewaySettings` by variable, values masked. gunicorn's
master says both at start (``gunicorn_conf.on_starting``)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from pydantic import ValidationError

from serving.gateway.settings import GatewaySettings
from serving.redaction import redact_url

# Read by gunicorn_conf.py in gunicorn's master, not by GatewaySettings.
GUNICORN_VARIABLES = frozenset(
    f"GATEWAY_{name}"
    for name in (
        "PORT", "BIND_HOST", "WORKERS", "THREADS", "WORKER_CLASS", "WORKER_CONNECTIONS",
        "TIMEOUT", "GRACEFUL_TIMEOUT", "MAX_REQUESTS", "CONTROL_SOCKET", "CPU_AFFINITY",
    )
)  # fmt: skip


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One message per ``GATEWAY_*`` variable of ``environ`` that no setting reads, naming
    the closest known name (``GATEWAY_WORKRES`` -> ``GATEWAY_WORKERS``), sorted by name.

    pydantic-settings ignores such a variable (``extra="ignore"``), so a misspelt setting
    would leave its default in force without a word. It reads its own names in any case
    (``gateway_backend``); gunicorn_conf.py reads its names as written.
    """
    read_any_case = {f"GATEWAY_{name.upper()}" for name in GatewaySettings.model_fields}
    # Compared without the prefix, which every name shares (GATEWAY_FOO is not GATEWAY_PORT).
    known = sorted(name.removeprefix("GATEWAY_") for name in GUNICORN_VARIABLES | read_any_case)
    messages = []
    for name in sorted(key for key in environ if key.upper().startswith("GATEWAY_")):
        if name in GUNICORN_VARIABLES or name.upper() in read_any_case:
            continue
        close = difflib.get_close_matches(name.upper()[8:], known, n=1, cutoff=0.75)
        hint = f" (did you mean GATEWAY_{close[0]}?)" if close else ""
        messages.append(f"{name} is not a gateway setting and is ignored{hint}")
    return messages


def settings_errors(error: ValidationError) -> str:
    """pydantic's errors of :class:`GatewaySettings` by variable, one clause each:
    ``GATEWAY_BACKEND='foo': Input should be 'grpc', 'rest' or 'local'``. The value is
    shown cut to 64 characters, never for a setting holding keys (it goes to the logs), and
    with a URL's password masked (``http://user:***@host``: :func:`redact_url`)."""
    clauses = []
    for item in error.errors():
        name = f"GATEWAY_{str(item['loc'][0]).upper()}" if item["loc"] else "GATEWAY_*"
        shown = "" if "KEY" in name else f"={redact_url(str(item.get('input')))[:64]!r}"
        clauses.append(f"{name}{shown}: {item['msg']}")
    return "; ".join(clauses)
