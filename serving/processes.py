"""Child-process helpers shared by the launchers of the model server and the gateway."""

from __future__ import annotations

import signal
import socket
import subprocess
from typing import Any


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read, release)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def check_can_listen(host: str, port: int) -> None:
    """Bind ``host:port`` as the servers will, then close at once; raise ``OSError`` when
    nothing could listen there: ``EADDRINUSE`` (a port in use), ``EADDRNOTAVAIL`` (an address
    of another machine), ``socket.gaierror`` (a name that does not resolve).

    ``SO_REUSEADDR`` as gRPC and cheroot set it: a port whose last connections are in
    TIME_WAIT is free to them. Shared by ``scripts.free_ports``, the model server's
    ``port_problems`` and the tuning chief's ``oracle_bind_problem``.
    """
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def stop_process(process: subprocess.Popen[Any], timeout: float = 20.0) -> int:
    """SIGTERM (a graceful shutdown for both servers), SIGKILL after timeout; the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
