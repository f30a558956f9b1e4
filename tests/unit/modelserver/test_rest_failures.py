"""A REST request that hits a bug of the model server: what the client hears, what is logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from serving.modelserver.errors import INTERNAL_MESSAGE
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import INCOMPLETE_BODY, create_rest_app


class BuggyManager(ModelManager):
    """A manager whose version lookup fails as a bug would (the one thing not real here)."""

    def resolve(self, *args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError("/srv/secret/models/qa/1/variables")


def _failed_request(path: str, request_id: str, caplog: pytest.LogCaptureFixture) -> str:
    metrics = ServerMetrics()
    app = create_rest_app(BuggyManager([], metrics, poll_seconds=0), metrics, "/m", lambda: True)
    with caplog.at_level(logging.ERROR, logger="serving.modelserver.rest"):
        response = app.test_client().get(path, headers={"X-Request-ID": request_id})
    assert response.status_code == 500
    assert response.get_json() == {"error": INTERNAL_MESSAGE}
    (record,) = caplog.records
    assert record.exc_info
    return record.getMessage()


def test_a_bug_is_logged_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    # The gateway's REST backend sends X-Request-ID so its 502 can be found here; the line
    # named no request.
    message = _failed_request("/v1/models/qa/metadata", "gw-7", caplog)
    assert "'gw-7'" in message and "/v1/models/qa/metadata" in message


def test_a_client_path_cannot_split_the_log_line(caplog: pytest.LogCaptureFixture) -> None:
    # The path is decoded: %0D returned the terminal to the line's start, so the forged text
    # after it hid the line's start; %1B[2J cleared the screen of whoever tails the log.
    path = "/v1/models/q%0D2026-01-01 INFO forged%1B[2J/metadata"
    message = _failed_request(path, "x\x01", caplog)
    assert "\r" not in message and "\x1b" not in message and "\x01" not in message


class StalledBody:
    """A request body whose client stopped sending: cheroot's socket read times out."""

    def read(self, size: int = -1) -> bytes:
        raise TimeoutError("timed out")


def test_a_body_the_client_stopped_sending_is_no_server_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """werkzeug turns the read's error into ClientDisconnected: it was answered 500, counted
    as 500 and logged with a traceback as a bug of the server."""
    metrics = ServerMetrics()
    app = create_rest_app(ModelManager([], metrics, poll_seconds=0), metrics, "/m", lambda: True)
    environ = EnvironBuilder("/v1/models/qa:predict", method="POST").get_environ()
    environ.update({"CONTENT_LENGTH": "100", "wsgi.input": StalledBody()})
    with caplog.at_level(logging.ERROR, logger="serving.modelserver.rest"):
        body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status == "400 BAD REQUEST"
    assert json.loads(b"".join(body)) == {"error": INCOMPLETE_BODY}
    assert not caplog.records
    assert 'code="500"' not in metrics.render().decode()
