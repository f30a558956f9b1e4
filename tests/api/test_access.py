"""Optional API keys and rate limits (issue: no authentication, no rate limit at the edge)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from serving.processes import free_port

QA = {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}


def test_without_keys_everything_is_open(client) -> None:
    assert client.post("/v1/qa", json=QA).status_code == 200
    assert client.get("/v1/models").status_code == 200


@pytest.fixture
def keyed(app_factory):
    return app_factory(api_keys=("alpha-key", "beta-key")).test_client()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"X-API-Key": "alpha-ke"},  # a prefix of a real key
        {"Authorization": "Basic alpha-key"},
        {"Authorization": "Bearer "},
    ],
)
def test_a_missing_or_wrong_key_is_401_in_the_error_shape(keyed, headers) -> None:
    for path in ("/v1/qa", "/v1/models", "/metrics"):
        response = (
            keyed.post(path, json=QA, headers=headers)
            if path == "/v1/qa"
            else keyed.get(path, headers=headers)
        )
        assert response.status_code == 401, path
        body = response.get_json()
        assert body["error"] == "missing or invalid API key" and isinstance(body["detail"], list)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "alpha" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "headers", [{"Authorization": "Bearer alpha-key"}, {"X-API-Key": "beta-key"}]
)
def test_a_valid_key_is_served(keyed, headers) -> None:
    assert keyed.post("/v1/qa", json=QA, headers=headers).status_code == 200
    assert keyed.get("/v1/models", headers=headers).status_code == 200


def test_probes_and_docs_stay_open(keyed) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert keyed.get(path).status_code in (200, 503), path


def test_metrics_can_be_left_open(app_factory) -> None:
    client = app_factory(api_keys=("k",), metrics_require_key=False).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/v1/models").status_code == 401


def test_keys_from_a_file(app_factory, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# one per line\nfile-key\n\n")
    client = app_factory(api_keys_file=keys).test_client()
    assert client.post("/v1/qa", json=QA, headers={"X-API-Key": "file-key"}).status_code == 200
    assert client.post("/v1/qa", json=QA, headers={"X-API-Key": "# one"}).status_code == 401


def test_rate_limit_answers_429_with_retry_after(app_factory) -> None:
    client = app_factory(rate_limit="3/minute").test_client()
    statuses = [client.post("/v1/qa", json=QA).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.post("/v1/qa", json=QA)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    body = limited.get_json()
    assert set(body) == {"error", "detail"} and "limit" in body["error"].lower()
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_rate_limits_count_per_key(app_factory) -> None:
    client = app_factory(api_keys=("a", "b"), rate_limit="2/minute").test_client()
    a, b = {"X-API-Key": "a"}, {"X-API-Key": "b"}
    assert [client.post("/v1/qa", json=QA, headers=a).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert client.post("/v1/qa", json=QA, headers=b).status_code == 200


def test_rate_limit_headers_leave_other_answers_retry_after_alone(app_factory) -> None:
    # Flask-Limiter wrote its Retry-After (the window's 60 s) on every answer of a limited
    # route: on 200s, and over a 503's own (the unrouted model's "retry in 1 s" read 60).
    client = app_factory(rate_limit="100/minute").test_client()
    answered = client.post("/v1/qa", json=QA)
    assert answered.status_code == 200 and "Retry-After" not in answered.headers
    assert "X-RateLimit-Remaining" in answered.headers
    nothing_listens = f"127.0.0.1:{free_port()}"
    down = app_factory(target=nothing_listens, retries=1, rate_limit="100/minute").test_client()
    unavailable = down.post("/v1/qa", json=QA)
    assert unavailable.status_code == 503
    assert unavailable.headers.getlist("Retry-After") == ["1"]  # its own, once


def test_refusals_of_the_key_check_and_the_rate_limit_count_under_their_model(
    app_factory,
) -> None:
    # They ran before the view that notes the model: a 401 or 429 of /v1/qa counted under
    # model="", missing from qa's error rate, where every other answer of it counts under qa.
    app = app_factory(api_keys=("k",), rate_limit="1/minute")
    client = app.test_client()
    key = {"X-API-Key": "k"}
    assert client.post("/v1/qa", json=QA).status_code == 401
    assert client.post("/v1/models/qa:predict", json={"inputs": QA}).status_code == 401
    assert client.post("/v1/models/nosuch:predict", json={"inputs": QA}).status_code == 401
    assert client.post("/v1/qa", json=QA, headers=key).status_code == 200
    assert client.post("/v1/qa", json=QA, headers=key).status_code == 429
    app.extensions["gateway"].metrics.flush()  # values a request held (serving.gateway.holding)
    registry: CollectorRegistry = app.extensions["gateway"].metrics.registry

    def count(endpoint: str, model: str, status: str) -> float | None:
        labels = {"endpoint": endpoint, "model": model, "version": "", "status": status}
        return registry.get_sample_value("gateway_requests_total", labels)

    assert count("/v1/qa", "qa", "401") == 1
    assert count("/v1/models/<name>:predict", "qa", "401") == 1
    assert count("/v1/models/<name>:predict", "", "401") == 1  # no label from a client's name
    assert count("/v1/qa", "qa", "429") == 1
    assert count("/v1/qa", "", "429") is None


@pytest.mark.parametrize("path", ["/v1/qa", "/v1/models/qa:predict", "/v1/models", "/metrics"])
def test_options_needs_no_key_and_no_rate_limit(app_factory, path: str) -> None:
    # OPTIONS (a CORS preflight, or a client asking which methods a route takes) was a 401
    # with keys set: a preflight carries no credentials (Fetch standard, CORS-preflight
    # request), and the answer (204 with Allow, no body) tells nothing a key guards.
    client = app_factory(api_keys=("k",), rate_limit="1/minute").test_client()
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    for _ in range(3):  # nor does it spend, or get refused by, the client's rate limit
        response = client.options(path, headers=preflight)
        assert response.status_code == 204, response.get_data(as_text=True)
        assert "OPTIONS" in response.headers["Allow"] and not response.get_data()
    assert client.open("*", method="OPTIONS").status_code == 204
    assert client.options("/v1/nosuch").status_code == 404  # no route: still no 401
    assert client.get("/v1/models").status_code == 401  # the route itself still needs one
    key = {"X-API-Key": "k"}
    assert client.get("/v1/models", headers=key).status_code == 200  # the limit unspent
