"""Refuse to start when a port the local servers are to listen on is taken.

``python -m scripts.free_ports --host 127.0.0.1 8000 8500 8501`` exits 0 when this process
could listen on every port, else 1 naming the taken ports. ``scripts/run_local.sh``
runs it first: with a second ``make run`` (or any other server) on these ports, its readiness
checks were answered by the other servers, so it printed "Ready" while its own model server
and gateway failed to bind.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

from serving.listening import check_can_listen


def taken(host: str, ports: Sequence[int]) -> list[int]:
    """The ports of ``ports`` on which nothing can listen at ``host`` now.

    Binds as the servers do (``serving.listening.check_can_listen``), then closes at once.
    Raises ``OSError`` for a host it cannot bind at all (an address of another machine, a
    name that does not resolve).
    """
    busy = []
    for port in ports:
        try:
            check_can_listen(host, port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            busy.append(port)
    return busy


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535 (run_local.sh passes its *_PORT settings)."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(
            f"a port (GATEWAY_PORT, GRPC_PORT, REST_PORT) must be 1 to 65535, got {text!r}"
        )
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every port is free, 1 (naming the taken ones) otherwise; 2 for a port that is
    none (``GRPC_PORT=99999`` was an OverflowError traceback) or a host it cannot bind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("ports", type=port, nargs="+")
    args = parser.parse_args(argv)
    try:
        busy = taken(args.host, args.ports)
    except OSError as error:  # an address of another machine, a name that does not resolve
        print(f"cannot listen on HOST {args.host!r}: {error.strerror or error}", file=sys.stderr)
        return 2
    if busy:
        print(
            f"in use on {args.host}: port {', '.join(map(str, busy))} (another `make run`?); "
            "stop that server or pick free ports: "
            "make run GATEWAY_PORT=8080 GRPC_PORT=8510 REST_PORT=8511",
            file=sys.stderr,
        )
    return 1 if busy else 0


if __name__ == "__main__":
    sys.exit(main())
