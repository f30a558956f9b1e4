"""``multihead-gateway``: the gateway under gunicorn with the project's gunicorn settings.

Same as ``gunicorn -c serving/gateway/gunicorn_conf.py "serving.gateway.app:create_app()"``
from a checkout, but works from an installed wheel (the config is found beside this module).
Settings come from the environment (``GATEWAY_PORT``, ``GATEWAY_BACKEND``, ...: see
serving/gateway/README.md); extra arguments go to gunicorn (``multihead-gateway --workers 4``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

CONFIG = Path(__file__).with_name("gunicorn_conf.py")
APP = "serving.gateway.app:create_app()"


def gunicorn_argv(extra: Sequence[str]) -> list[str]:
    """gunicorn's command line (without the program name): config, extra options, the app."""
    return ["-c", str(CONFIG), *extra, APP]


def main(argv: Sequence[str] | None = None) -> int:
    """Run gunicorn in this process until it is stopped (SIGTERM/SIGINT); returns its code."""
    from gunicorn.app.wsgiapp import WSGIApplication  # the serve extra; not needed to import

    extra = list(sys.argv[1:] if argv is None else argv)
    sys.argv = ["multihead-gateway", *gunicorn_argv(extra)]
    try:
        WSGIApplication("%(prog)s [OPTIONS]").run()
    except SystemExit as stopped:  # gunicorn's arbiter ends with sys.exit(code)
        return stopped.code if isinstance(stopped.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
