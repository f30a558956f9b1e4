"""scripts.wait_for (run_local.sh's readiness wait) says why a model is not ready."""

from __future__ import annotations

import pytest

from scripts.wait_for import main
from tests.support.model_server import ModelServerHandle


def test_a_timeout_prints_the_model_servers_word_on_each_waiting_model(
    model_server: ModelServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: a model named in models.config that the server never loaded was
    # only "not ready after N s: ['model tickets']".
    argv = ["--model-server", model_server.rest_url, "--models", "qa,tickets", "--timeout", "0"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "not ready after 0 s: ['model tickets']" in error
    assert "  model tickets: Could not find any versions of model tickets" in error


def test_a_timeout_prints_what_each_waiting_url_answers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Found as a new user: make run with an unfit model of one's own waited READY_TIMEOUT, then
    # printed only "not ready after 300 s: ['http://127.0.0.1:8000/readyz']", though /readyz
    # names the model and the reason.
    import http.server
    import threading

    body = b'{"error":"not ready","detail":[{"model":"mine","reason":"version 1: unfit"}]}'

    class NotReady(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotReady)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
    try:
        assert main(["--url", url, "--timeout", "0"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    error = capsys.readouterr().err
    assert f"  {url}: HTTP 503: {body.decode()}" in error
