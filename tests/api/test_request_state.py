"""What every answered request leaves behind: the access log line, the request id, metrics.

Pinned because the request and ``g`` objects are looked up once per function (issue 9, round
3): each field must still come from the request being answered.
"""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.logs import LOGGER_NAME, JsonFormatter

QA = {"article": "Mary moved to the bathroom. John went to the hallway.", "question": "Where?"}


def _logged(
    log: io.StringIO, client, *requests: tuple[str, Any, dict[str, str]]
) -> list[dict[str, Any]]:
    for path, payload, headers in requests:
        response = client.post(path, json=payload, headers=headers)
        assert response.headers["X-Request-ID"] == headers.get(
            "X-Request-ID", response.headers["X-Request-ID"]
        )
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_access_line_fields_and_request_id(app_factory, gateway_log) -> None:
    client = app_factory(log_level="INFO").test_client()
    logged = _logged(
        gateway_log,
        client,
        ("/v1/qa", QA, {"X-Request-ID": "state-qa"}),
        ("/v1/qa", {"article": 3}, {"X-Request-ID": "state-bad"}),
        ("/v1/models/qa:predict", {"inputs": QA}, {}),
    )
    access = [entry for entry in logged if entry["logger"] == f"{LOGGER_NAME}.access"]
    assert len(access) == 3
    first, bad, generic = access
    assert first["message"] == "POST /v1/qa 200"
    assert {key: first[key] for key in ("method", "path", "status", "model", "version")} == {
        "method": "POST",
        "path": "/v1/qa",
        "status": 200,
        "model": "qa",
        "version": "1",
    }
    assert first["request_id"] == "state-qa" and first["duration_ms"] >= 0
    assert (bad["status"], bad["request_id"], bad["model"], bad["version"]) == (
        422,
        "state-bad",
        "qa",
        "",
    )
    # A generated id: 32 hex characters, the same in the log line as in the header.
    assert re.fullmatch(r"[0-9a-f]{32}", generic["request_id"])
    assert generic["path"] == "/v1/models/qa:predict" and generic["version"] == "1"


def test_a_line_outside_a_request_has_no_request_id() -> None:
    record = logging.LogRecord(LOGGER_NAME, logging.INFO, __file__, 1, "poll", None, None)
    entry = json.loads(JsonFormatter().format(record))
    assert "request_id" not in entry and entry["message"] == "poll"


def test_one_request_is_counted_once_in_every_metric(client) -> None:
    def count(metrics: str, name: str) -> float:
        found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    names = [
        'gateway_requests_total{endpoint="/v1/qa",model="qa",status="200",version="1"}',
        'gateway_request_duration_seconds_count{endpoint="/v1/qa",model="qa",status="200",'
        'version="1"}',
        'gateway_batch_size_count{model="qa"}',
        *(
            f'gateway_stage_duration_seconds_count{{model="qa",stage="{stage}"}}'
            for stage in ("tokenise", "backend", "postprocess")
        ),
    ]
    before = client.get("/metrics").get_data(as_text=True)
    assert client.post("/v1/qa", json=QA).status_code == 200
    after = client.get("/metrics").get_data(as_text=True)
    assert [count(after, name) - count(before, name) for name in names] == [1.0] * len(names)


@pytest.mark.parametrize("fault", ["backend", "outputs"])
def test_each_stage_that_ran_is_counted_once_when_it_fails(client, monkeypatch, fault) -> None:
    # A stage is observed whether it ends normally or raises (the timers' try/finally).
    def count(metrics: str, stage: str) -> float:
        name = f'gateway_stage_duration_seconds_count{{model="qa",stage="{stage}"}}'
        found = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", metrics, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def predict(*args: object, **kwargs: object) -> dict[str, object]:
        if fault == "backend":
            raise BackendError(BackendFailure.UNAVAILABLE, "down", retryable=False)
        return {}  # no outputs: the postprocess stage fails (502)

    assert client.post("/v1/qa", json=QA).status_code == 200  # routed and checked first
    monkeypatch.setattr(client.application.extensions["gateway"].backend, "predict", predict)
    stages = ("tokenise", "backend", "postprocess")
    before = client.get("/metrics").get_data(as_text=True)
    assert client.post("/v1/qa", json=QA).status_code == (503 if fault == "backend" else 502)
    after = client.get("/metrics").get_data(as_text=True)
    ran = [1.0, 1.0, 0.0 if fault == "backend" else 1.0]
    assert [count(after, stage) - count(before, stage) for stage in stages] == ran
