"""A REST request that hits a bug of the model server: what the client hears, what is logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from serving.modelserver.errors import INTERNAL_MESSAGE
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import create_rest_app


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
