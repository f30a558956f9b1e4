"""Whether a server could listen on an address, asked before it starts."""

from __future__ import annotations

import socket


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as the servers will, then close at once; raise ``OSError`` when
    nothing could listen there: ``EADDRINUSE`` (a port in use), ``EADDRNOTAVAIL`` (an address
    of another machine), ``socket.gaierror`` (a name that does not resolve).

    ``SO_REUSEADDR`` as gRPC and cheroot set it: a port whose last connections are in
    TIME_WAIT is free to them. Shared by ``scripts.free_ports``, the model server's
    ``port_problems`` and the tuning chief's ``oracle_bind_problem`` (here, not in the
    dev-only ``serving.processes``: the model server ships in the wheel).
    """
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)
