"""The gateway's gunicorn responses: headers and a one-piece body leave in one send.

A real gunicorn request (its own parser) and ``gunicorn.http.wsgi.create`` write into a
socket that records every ``sendall``/``send``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import message, wsgi
from gunicorn.http.parser import RequestParser

from serving.gateway.one_write import (
    ONE_WRITE_MAX_BODY,
    OneWriteResponse,
    use_one_write_responses,
)
from serving.gateway.workers import (
    GeventWorker,
    ThreadWorker,
    json_error_response,
    resolve_settings,
)

CLIENT = ("127.0.0.1", 50000)


class RecordingSocket:
    """A client socket: the request bytes to read, every send recorded."""

    def __init__(self, request: bytes) -> None:
        self._data = io.BytesIO(request)
        self.sends: list[bytes] = []

    def recv(self, size: int) -> bytes:
        return self._data.read(size)

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data))
        return len(data)


@pytest.fixture(autouse=True)
def _restore_gunicorn() -> Iterator[None]:
    original, reader, date = wsgi.Response, message.ChunkedReader, util.http_date
    yield  # init_process replaces them
    wsgi.Response, message.ChunkedReader, util.http_date = original, reader, date


def _respond(
    method: str, status: str, headers: list[tuple[str, str]], body: list[bytes]
) -> tuple[wsgi.Response, RecordingSocket]:
    sock = RecordingSocket(f"{method} /v1/qa HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
    config = Config()
    request = next(iter(RequestParser(config, sock, CLIENT)))
    response, _ = wsgi.create(request, sock, CLIENT, "127.0.0.1:8000", config)
    response.start_response(status, headers)
    for piece in body:
        response.write(piece)
    response.close()
    return response, sock


def _json(body: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]


def _without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Date:"))


def test_a_json_answer_is_one_send_with_the_same_bytes_as_gunicorn() -> None:
    body = b'{"answer": "kitchen"}'
    _, plain = _respond("POST", "200 OK", _json(body), [body])
    use_one_write_responses()
    response, joined = _respond("POST", "200 OK", _json(body), [body])
    assert isinstance(response, OneWriteResponse)
    assert len(plain.sends) == 2  # gunicorn's own: headers, then body
    assert len(joined.sends) == 1
    assert _without_date(joined.sends[0]) == _without_date(b"".join(plain.sends))
    assert joined.sends[0].endswith(b"\r\n\r\n" + body)


def test_headers_without_a_body_are_still_sent() -> None:
    use_one_write_responses()
    _, head = _respond("HEAD", "200 OK", _json(b"{}"), [b"{}"])
    _, empty = _respond("POST", "204 No Content", [], [])
    assert len(head.sends) == 1 and head.sends[0].endswith(b"\r\n\r\n")
    assert b"{}" not in head.sends[0]
    assert len(empty.sends) == 1 and empty.sends[0].startswith(b"HTTP/1.1 204")


def test_chunked_and_large_bodies_keep_gunicorns_sends() -> None:
    use_one_write_responses()
    _, chunked = _respond("POST", "200 OK", [("Content-Type", "text/plain")], [b"ab", b"cd"])
    assert b"Transfer-Encoding: chunked" in chunked.sends[0]
    assert chunked.sends[0].endswith(b"\r\n\r\n")
    assert chunked.sends[1:] == [b"2\r\nab\r\n", b"2\r\ncd\r\n", b"0\r\n\r\n"]
    large = b"x" * (ONE_WRITE_MAX_BODY + 1)
    _, sock = _respond("POST", "200 OK", _json(large), [large])
    assert len(sock.sends) == 2 and sock.sends[1] == large


def test_a_body_in_pieces_sends_the_headers_with_the_first() -> None:
    use_one_write_responses()
    _, sock = _respond("POST", "200 OK", _json(b"abcd"), [b"ab", b"cd"])
    assert len(sock.sends) == 2
    assert sock.sends[0].endswith(b"\r\n\r\nab") and sock.sends[1] == b"cd"


@pytest.mark.parametrize("worker_class", [GeventWorker, ThreadWorker])
def test_the_gateway_workers_install_the_one_write_response(
    worker_class: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gunicorn's own init_process would run the worker's loop: stopped before it.
    for base in worker_class.__mro__[2:]:
        if "init_process" in vars(base):
            monkeypatch.setattr(base, "init_process", lambda self: None)
    worker: Any = object.__new__(worker_class)
    worker.cfg = Config()
    assert wsgi.Response is not OneWriteResponse
    worker.init_process()
    assert wsgi.Response is OneWriteResponse
    assert "keepalive" in vars(worker.cfg)  # settings resolved (test_resolved_settings)


def test_resolved_settings_read_as_before_without_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    config = Config()
    config.set("keepalive", 7)
    config.set("limit_request_fields", 50)
    before = {name: getattr(config, name) for name in config.settings}
    resolve_settings(config)

    def refused(self: Config, name: str) -> Any:
        raise AssertionError(f"Config.__getattr__ ran for {name}")

    monkeypatch.setattr(Config, "__getattr__", refused)
    after = {name: getattr(config, name) for name in config.settings}
    assert after == before
    assert (config.keepalive, config.limit_request_fields) == (7, 50)
    # A setting Config serves through a property still goes through it.
    assert "worker_class" in vars(config) and config.worker_class_str == "sync"


def _refusal(request: bytes) -> Any:
    """gunicorn's parser error for ``request`` (the test fails if it parses)."""
    with pytest.raises(Exception) as raised:
        next(iter(RequestParser(Config(), RecordingSocket(request), CLIENT)))
    return raised.value


@pytest.mark.parametrize(
    ("framing", "said"),
    [
        (b"Content-Length: 2\r\nContent-Length: 2\r\n", "Invalid HTTP Header: 'CONTENT-LENGTH'"),
        (b"Content-Length: -1\r\n", "Invalid HTTP Header: 'CONTENT-LENGTH'"),
        (b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "'CONTENT-LENGTH'"),
        (b"Bad\x01Name: x\r\n", "Invalid HTTP header name: 'Bad\\x01Name'"),
    ],
)
def test_a_refusal_says_what_was_refused(framing: bytes, said: str) -> None:
    # The body was {"error": "Bad Request", "detail": []}: no word of which header.
    refused = _refusal(b"POST /v1/qa HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n{}")
    answer = json_error_response(b"HTTP/1.1 400 Bad Request", refused)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    payload = json.loads(body)
    assert payload["error"] == "Bad Request"
    (detail,) = payload["detail"]
    assert said in detail["msg"] and detail["msg"].isprintable() and len(detail["msg"]) <= 67


def test_a_refusal_echoes_client_text_cut() -> None:
    refused = _refusal(b"GET /" + b"\x7f" * 500 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    (detail,) = json.loads(
        json_error_response(b"HTTP/1.1 400 Bad Request", refused).split(b"\r\n\r\n", 1)[1]
    )["detail"]
    assert detail["msg"].endswith("...") and len(detail["msg"]) == 67


def test_a_server_error_says_nothing_of_its_exception() -> None:
    answer = json_error_response(b"HTTP/1.1 500 Internal Server Error", RuntimeError("/srv/x"))
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {
        "error": "Internal Server Error",
        "detail": [],
    }


def _refused_by_a_worker(request: bytes, in_create: bool) -> bytes:
    """What a gateway worker answers to ``request``, which gunicorn refuses while parsing it
    (``in_create``: while building its WSGI environ)."""
    sock = RecordingSocket(request)
    config = Config()
    with pytest.raises(Exception) as raised:
        parsed = next(iter(RequestParser(config, sock, CLIENT)))
        if in_create:
            wsgi.create(parsed, sock, CLIENT, "127.0.0.1:8000", config)
    worker = ThreadWorker.__new__(ThreadWorker)  # handle_error reads only cfg and log
    worker.cfg, worker.log = config, Logger(config)
    worker.handle_error(getattr(raised.value, "req", None), sock, CLIENT, raised.value)
    return b"".join(sock.sends)


@pytest.mark.parametrize(
    ("request_bytes", "in_create", "status", "said"),
    [
        # A trusted forwarder's SCRIPT_NAME (any client on 127.0.0.1 by default) that does not
        # start the path: gunicorn answered "500 Bad Request".
        (
            b"GET /healthz HTTP/1.1\r\nHost: gw\r\nSCRIPT_NAME: /api\r\n\r\n",
            True,
            b"400 Bad Request",
            "Configuration problem: Request path '/healthz'",
        ),
        # A transfer coding gunicorn does not know: "501 Bad Request" (gzip is the app's 415).
        (
            b"POST /v1/qa HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: foo, chunked\r\n\r\n",
            False,
            b"415 Unsupported Media Type",
            "Unsupported transfer coding: 'foo",
        ),
    ],
)
def test_client_errors_gunicorn_answers_5xx_are_4xx(
    request_bytes: bytes, in_create: bool, status: bytes, said: str
) -> None:
    head, _, body = _refused_by_a_worker(request_bytes, in_create).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b"\r\n")
    (detail,) = json.loads(body)["detail"]
    assert detail["msg"].startswith(said)


class _RecordingLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, its warnings kept (what the gateway's log would hold)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.warnings: list[str] = []

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.warnings.append(msg % args if args else msg)


@pytest.mark.parametrize(
    "line",
    [b"Authorization Bearer sk-SECRET", b"Authorization Bearer sk-SECRET: x", b"X-Key\tsk-SECRET"],
)
def test_a_refused_header_line_is_named_without_its_value(line: bytes) -> None:
    # A colon forgotten (curl -H "Authorization Bearer $KEY") was logged whole at WARNING:
    # "Invalid request from ip=...: Invalid HTTP Header: 'Authorization Bearer sk-...'".
    request = b"POST /v1/qa HTTP/1.1\r\nHost: gw\r\n" + line + b"\r\nContent-Length: 2\r\n\r\n{}"
    sock = RecordingSocket(request)
    config = Config()
    with pytest.raises(Exception) as raised:
        next(iter(RequestParser(config, sock, CLIENT)))
    worker = ThreadWorker.__new__(ThreadWorker)  # handle_error reads only cfg and log
    worker.cfg, worker.log = config, _RecordingLogger(config)
    worker.handle_error(None, sock, CLIENT, raised.value)
    answer = b"".join(sock.sends)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    (warning,) = worker.log.warnings
    assert "SECRET" not in warning and "SECRET" not in answer.decode()
    assert line.split()[0].decode() in warning  # the header is still named
