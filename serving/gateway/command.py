"""``multihead-gateway``: the gateway under gunicorn with the project's gunicorn settings.

Same as ``gunicorn -c serving/gateway/gunicorn_conf.py "serving.gateway.app:create_app()"``
from a checkout, but works from an installed wheel (the config is found beside this module).
Settings come from the environment (``GATEWAY_PORT``, ``GATEWAY_BACKEND``, ...: see
serving/gateway/README.md); extra arguments go to gunicorn (``multihead-gateway --workers 4``).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

CONFIG = Path(__file__).with_name("gunicorn_conf.py")
APP = "serving.gateway.app:create_app()"


def gunicorn_argv(extra: Sequence[str]) -> list[str]:
    """gunicorn's command line (without the program name): config, extra options, the app."""
    return ["-c", str(CONFIG), *extra, APP]


def settings_help() -> str:
    """What ``--help`` prints before gunicorn's options: the gateway's settings are
    ``GATEWAY_*`` environment variables, every one named here (from ``GatewaySettings`` and
    ``GUNICORN_VARIABLES``, so the list cannot go stale).

    gunicorn's own help listed only its options, with its defaults (bind 127.0.0.1:8000,
    1 worker) where the gateway's config sets others (0.0.0.0:8000, 2 workers), and no word
    of ``GATEWAY_MODEL_REPO`` or the backend: a new user's ``multihead-gateway --help``.
    """
    from serving.gateway.settings import GatewaySettings
    from serving.gateway.settings_messages import GUNICORN_VARIABLES

    names = sorted(
        {*GUNICORN_VARIABLES, *(f"GATEWAY_{n.upper()}" for n in GatewaySettings.model_fields)}
    )
    listing = textwrap.fill(", ".join(names), width=88, initial_indent="  ", subsequent_indent="  ")
    return (
        "multihead-gateway: the gateway (serving.gateway.app:create_app()) under gunicorn with\n"
        f"{CONFIG.name}. Its settings are environment variables, each with its default and\n"
        "meaning in serving/gateway/README.md (Settings), e.g.\n"
        "  GATEWAY_MODEL_REPO=model_repo GATEWAY_GRPC_TARGET=127.0.0.1:8500 GATEWAY_PORT=8000\n"
        "  (bind GATEWAY_BIND_HOST:GATEWAY_PORT, default 0.0.0.0:8000; GATEWAY_WORKERS=2)\n"
        f"{listing}\n"
        "The options below are gunicorn's and override those settings; the [defaults] shown\n"
        "are gunicorn's own, not the gateway's.\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run gunicorn in this process until it is stopped (SIGTERM/SIGINT); returns its code."""
    from gunicorn.app.wsgiapp import WSGIApplication  # the serve extra; not needed to import

    extra = list(sys.argv[1:] if argv is None else argv)
    if "-h" in extra or "--help" in extra:
        print(settings_help())
    sys.argv = ["multihead-gateway", *gunicorn_argv(extra)]
    try:
        WSGIApplication("%(prog)s [OPTIONS]").run()
    except SystemExit as stopped:  # gunicorn's arbiter ends with sys.exit(code)
        return stopped.code if isinstance(stopped.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
