"""The prediction routes' WSGI path (``serving.gateway.fastpath``) answers exactly as Flask.

Every case is sent to two apps over the same real model server: the default one (fast path
in front of Flask) and one with ``fast_path=False`` (Flask for everything). Status, body
bytes, every header, the log lines (access line fields, warnings and errors with their
request id) and the request metrics must be the same.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

import numpy as np
import pytest
from flask import Flask

from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.fastpath import PredictDispatcher, match
from serving.gateway.logs import LOGGER_NAME

QA = {"article": "Mary moved to the bathroom. John went to the hallway.", "question": "Where?"}
PROFILE = {"posts": ["Finished my thesis draft today.", "Work was long."]}
PAIRS = {"pairs": [{"text_a": "A plane is taking off.", "text_b": "A plane takes off."}]}
JSON = "application/json"
MAX_BODY = 4096

# (path, body bytes, extra headers): every status the prediction routes give
CASES: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "qa": ("/v1/qa", json.dumps({**QA, "top_k": 2}).encode(), {}),
    "qa batch": ("/v1/qa", json.dumps({"instances": [QA, QA]}).encode(), {}),
    "profile": ("/v1/profile", json.dumps(PROFILE).encode(), {}),
    "similarity": ("/v1/similarity", json.dumps(PAIRS).encode(), {}),
    "predict": ("/v1/models/qa:predict", json.dumps({"inputs": QA}).encode(), {}),
    "predict batch": (
        "/v1/models/profile:predict",
        json.dumps({"instances": [PROFILE, PROFILE]}).encode(),
        {},
    ),
    "version": ("/v1/models/qa/versions/1:predict", json.dumps({"inputs": QA}).encode(), {}),
    "unknown label": ("/v1/models/qa/labels/stable:predict", b'{"inputs": {}}', {}),
    "bad label": ("/v1/models/qa/labels/a*b:predict", b"{", {}),
    "bad version": ("/v1/models/qa/versions/x1:predict", b"{", {}),
    "version 0": ("/v1/models/qa/versions/0:predict", json.dumps({"inputs": QA}).encode(), {}),
    "unknown model": ("/v1/models/nope:predict", json.dumps({"inputs": QA}).encode(), {}),
    "invalid field": ("/v1/qa", b'{"article": 3, "question": "q"}', {}),
    "unknown field": ("/v1/models/qa:predict", json.dumps({"inputs": {**QA, "x": 1}}).encode(), {}),
    "no words": ("/v1/profile", b'{"posts": ["!!!"]}', {}),
    "not json": ("/v1/qa", b'{"article": ', {}),
    "nan": ("/v1/qa", b'{"article": "a", "question": "q", "top_k": NaN}', {}),
    "duplicate key": ("/v1/qa", b'{"article": "a", "article": "b", "question": "q"}', {}),
    "not an object": ("/v1/similarity", b"[1, 2]", {}),
    "text/plain": ("/v1/qa", json.dumps(QA).encode(), {"Content-Type": "text/plain"}),
    "json params": ("/v1/qa", json.dumps(QA).encode(), {"Content-Type": "Application/JSON; x=1"}),
    "gzip": ("/v1/qa", json.dumps(QA).encode(), {"Content-Encoding": "gzip"}),
    "identity": ("/v1/qa", json.dumps(QA).encode(), {"Content-Encoding": "identity"}),
    "latin-1": (
        "/v1/qa",
        json.dumps({**QA, "question": "Où?"}, ensure_ascii=False).encode("latin-1"),
        {"Content-Type": "application/json; charset=latin-1"},
    ),
    "too large": ("/v1/qa", json.dumps({**QA, "article": "a " * MAX_BODY}).encode(), {}),
    "utf-16": ("/v1/qa", json.dumps(QA).encode("utf-16"), {}),
    "no length": ("/v1/qa", b"", {}),  # werkzeug's client: no Content-Length for no body
    "bad request id": ("/v1/qa", json.dumps(QA).encode(), {"X-Request-ID": "tab\there"}),
}


@pytest.fixture
def apps(app_factory) -> tuple[Flask, Flask]:
    settings = {"log_level": "INFO", "max_body_bytes": MAX_BODY}
    return app_factory(**settings), app_factory(fast_path=False, **settings)


def _requests_total(app: Flask) -> dict[str, float]:
    text = app.test_client().get("/metrics").get_data(as_text=True)
    found = re.findall(r"^(gateway_requests_total\{[^}]*\}) ([0-9.e+]+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def _answer(app: Flask, log: io.StringIO, case: tuple[str, bytes, dict[str, str]]) -> Any:
    path, body, headers = case
    headers = {"Content-Type": JSON, "X-Request-ID": "same-id", **headers}
    before = _requests_total(app)
    start = len(log.getvalue().splitlines())
    response = app.test_client().post(path, data=body, headers=headers)
    lines = [json.loads(line) for line in log.getvalue().splitlines()[start:]]
    after = _requests_total(app)
    counted = {key: value - before.get(key, 0.0) for key, value in after.items()}
    if headers["X-Request-ID"] != "same-id":  # a generated id: same shape, not the same value
        generated = response.headers["X-Request-ID"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        assert all(line.get("request_id") == generated for line in lines)
        response.headers["X-Request-ID"] = "generated"
        lines = [{**line, "request_id": "generated"} for line in lines]
    for line in lines:
        line.pop("time"), line.pop("duration_ms", None), line.pop("exception", None)
    return response.status_code, response.get_data(), list(response.headers), lines, counted


def _same(apps: tuple[Flask, Flask], log: io.StringIO, case: Any) -> Any:
    fast, flask_only = apps
    assert isinstance(fast.wsgi_app, PredictDispatcher)
    assert not isinstance(flask_only.wsgi_app, PredictDispatcher)
    answered = _answer(fast, log, case)
    assert answered == _answer(flask_only, log, case)
    return answered


@pytest.mark.parametrize("name", list(CASES))
def test_the_fast_path_answers_as_flask(apps, gateway_log, name) -> None:
    status, body, headers, lines, counted = _same(apps, gateway_log, CASES[name])
    access = [line for line in lines if line["logger"] == f"{LOGGER_NAME}.access"]
    assert len(access) == 1 and access[0]["status"] == status  # the test's own check works
    assert sum(counted.values()) == 2  # this request and the /metrics read before it
    assert ("Content-Type", JSON) in headers and json.loads(body)


@pytest.mark.parametrize(
    "name",
    [
        "text/plain",
        "gzip",
        "not json",
        "too large",
        "utf-16",
        "no length",
        "bad version",
        "bad label",
        "duplicate key",
    ],
)
def test_a_request_refused_before_its_version_counts_under_its_model(
    apps, gateway_log, name
) -> None:
    # The README: the per-model endpoints count under the model's name. A body (400, 413,
    # 415) or a pin refused before the version is resolved was counted under model="".
    status, _body, _headers, lines, counted = _same(apps, gateway_log, CASES[name])
    assert status in (400, 411, 413, 415, 422)  # every one of these cases asks model qa
    (request,) = [key for key in counted if counted[key] and 'endpoint="/metrics"' not in key]
    assert 'model="qa"' in request
    (access,) = [line for line in lines if line["logger"] == f"{LOGGER_NAME}.access"]
    assert access["model"] == "qa"


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (BackendError(BackendFailure.UNAVAILABLE, "raw backend text"), 503),
        (BackendError(BackendFailure.DEADLINE_EXCEEDED, "raw backend text"), 504),
        (BackendError(BackendFailure.INVALID_ARGUMENT, "raw backend text"), 502),
        (RuntimeError("a fault of ours"), 500),
    ],
)
def test_backend_failures_and_faults_answer_as_flask(
    apps, gateway_log, monkeypatch, failure, status
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    for app in apps:
        assert app.test_client().post("/v1/qa", json=QA).status_code == 200  # routed, checked
        monkeypatch.setattr(app.extensions["gateway"].backend, "predict", fail)
    answered = _same(apps, gateway_log, CASES["qa"])
    assert answered[0] == status
    levels = {line["level"] for line in answered[3]}
    assert levels >= {"INFO", "ERROR" if status == 500 else "WARNING"}  # logged with the id
    assert all(line["request_id"] == "same-id" for line in answered[3])
    if status == 503:
        assert ("Retry-After", "1") in answered[2]


@pytest.mark.parametrize("value", [np.nan, np.inf, None])
def test_unusable_outputs_answer_as_flask(apps, gateway_log, monkeypatch, value) -> None:
    for app in apps:  # routed and checked against the real backend first
        assert app.test_client().post("/v1/similarity", json=PAIRS).status_code == 200
    heads = apps[0].extensions["gateway"].registry.state("similarity").routed.spec.heads

    def outputs(model: str, selector: object, inputs: dict[str, Any], *rest: object) -> Any:
        if value is None:
            return {}  # a missing output
        batch = len(next(iter(inputs.values())))
        return {head.output: np.full((batch, 1), value, dtype=np.float32) for head in heads}

    for app in apps:
        monkeypatch.setattr(app.extensions["gateway"].backend, "predict", outputs)
    assert _same(apps, gateway_log, CASES["similarity"])[0] == 502


ROUTE_PATHS = [
    "/v1/qa",
    "/v1/profile",
    "/v1/similarity",
    "/v1/models/qa:predict",
    "/v1/models/a:b:predict",
    "/v1/models/:predict:predict",
    "/v1/models/qa/versions/1:predict",
    "/v1/models/qa/versions/x:predict:predict",
    "/v1/models/qa/labels/stable:predict",
    "/v1/models/qa/labels/a.b-c_d:predict",
    "/v1/models/:predict",
    "/v1/models/qa/versions/:predict",
    "/v1/models//versions/1:predict",
    "/v1/models/qa/other/1:predict",
    "/v1/models/qa/versions/1/x:predict",
    "/v1/models/qa/versions/1",
    "/v1/qa/",
    "/v1/qa:predict",
    "/v1/models/qa",
    "/v1/models",
    "/v1/models/qa/architecture.png",
    "/healthz",
]


@pytest.mark.parametrize("path", ROUTE_PATHS)
def test_a_matched_route_is_the_one_flask_matches(client, path) -> None:
    route = match(path)
    if route is None:
        return  # Flask decides (404, 405, a redirect or another view)
    rule, arguments = client.application.url_map.bind("localhost").match(
        path, method="POST", return_rule=True
    )
    assert (route.rule, route.arguments) == (rule.rule, arguments)


def test_requests_the_fast_path_leaves_to_flask(app_factory, gateway_log) -> None:
    app = app_factory(log_level="INFO")
    calls: list[str] = []
    flask_app = app.wsgi_app._fallback

    def counting(environ: dict[str, Any], start_response: Any) -> Any:
        calls.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    app.wsgi_app._fallback = counting
    client = app.test_client()
    assert client.post("/v1/qa", json=QA).status_code == 200
    assert client.post("/v1/qa?version=1", json=QA).status_code == 200
    assert client.get("/v1/qa").status_code == 405
    assert client.post("/v1/qa/", json=QA).status_code == 404
    assert client.post("/v1/models/qa", json=QA).status_code == 405
    assert client.post("/v1/models/qa:predict", json={"inputs": QA}).status_code == 200
    # The query string, the GET, the unknown path and the GET-only rule went to Flask.
    assert calls == ["/v1/qa", "/v1/qa", "/v1/qa/", "/v1/models/qa"]


@pytest.mark.parametrize(
    "settings",
    [{"fast_path": False}, {"api_keys": ("k",)}, {"rate_limit": "100/minute"}],
)
def test_no_fast_path_when_switched_off_or_other_hooks_run(app_factory, settings) -> None:
    assert not isinstance(app_factory(**settings).wsgi_app, PredictDispatcher)
    assert isinstance(app_factory().wsgi_app, PredictDispatcher)
