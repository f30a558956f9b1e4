"""Raw HTTP/1.1 over a socket, for tests of what gunicorn and the gateway do with exact bytes."""

from __future__ import annotations

import socket


def read_to_close(connection: socket.socket) -> bytes:
    """Every byte the peer sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def send_raw(url: str, request: bytes, timeout: float = 10.0, close_sending: bool = False) -> bytes:
    """Send ``request`` as is to ``url`` (``http://host:port``); every byte answered until the
    gateway closes (``close_sending``: shut the sending side first, as a client that is done)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        if close_sending:
            connection.shutdown(socket.SHUT_WR)
        return read_to_close(connection)


def parse_answer(received: bytes) -> tuple[int, dict[str, str], bytes]:
    """The first answer's status, headers (lower-case names) and the bytes after its head."""
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body
