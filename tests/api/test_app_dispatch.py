"""Per-request Flask work the gateway does once (issue 9): no sessions, ``ensure_sync`` looked
up once per function, and an access line written without a stack walk that still passes
through the access logger's filters."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import flask
import pytest

from serving.gateway.logs import LOGGER_NAME

QA = {"article": "Mary moved to the bathroom. John went to the hallway.", "question": "Where?"}


def test_the_gateway_keeps_no_session(client) -> None:
    response = client.post("/v1/qa", json=QA)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    with client.application.test_request_context("/v1/qa"):
        assert dict(flask.session) == {}
        with pytest.raises(RuntimeError, match="session is unavailable"):
            flask.session["user"] = "someone"


def test_ensure_sync_checks_each_function_once(app_factory, monkeypatch) -> None:
    client = app_factory(fast_path=False).test_client()  # Flask's dispatch for every request
    checked: list[Any] = []

    def counting(func: Any) -> bool:
        checked.append(func)
        return inspect.iscoroutinefunction(func)

    monkeypatch.setattr(flask.app, "iscoroutinefunction", counting)
    app = client.application
    for _ in range(3):
        assert client.post("/v1/qa", json=QA).status_code == 200
    # The view and the before/after hooks ran three times; each was checked at most once.
    assert checked and len(checked) == len(set(checked))
    assert app.ensure_sync(app.view_functions["gateway.qa"]) is app.view_functions["gateway.qa"]

    async def coroutine() -> None:
        """Flask wraps coroutine functions (and refuses them without its async extra)."""

    with pytest.raises(RuntimeError, match="async"):
        app.ensure_sync(coroutine)


@pytest.mark.parametrize("fast_path", [True, False])
def test_the_access_line_passes_the_access_loggers_filters(app_factory, fast_path) -> None:
    client = app_factory(log_level="INFO", fast_path=fast_path).test_client()
    access = logging.getLogger(f"{LOGGER_NAME}.access")
    seen: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        seen.append(record)
        return False  # dropped: no handler writes it

    access.addFilter(keep)
    try:
        assert client.post("/v1/qa", json=QA).status_code == 200
    finally:
        access.removeFilter(keep)
    assert [record.getMessage() for record in seen] == ["POST /v1/qa 200"]
    assert seen[0].fields["path"] == "/v1/qa"  # type: ignore[attr-defined]
