"""Every error path answers with one JSON shape and the right status (never a 500)."""

from __future__ import annotations

import grpc
import pytest

from serving.processes import free_port

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


def _assert_shape(response, status: int):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.json
    assert set(body) == {"error", "detail"}
    assert isinstance(body["error"], str) and isinstance(body["detail"], list)
    if status == 422:
        # The README's 422 detail shape, whether pydantic or the gateway wrote it.
        assert all({"loc", "msg", "type"} <= set(item) for item in body["detail"]), body
    return body


def test_wrong_content_type_is_415(client) -> None:
    _assert_shape(client.post("/v1/qa", data="article=x", content_type="text/plain"), 415)


def test_bad_json_is_400(client) -> None:
    _assert_shape(client.post("/v1/qa", data="{nope", content_type="application/json"), 400)
    # Not UTF-8 (b"\xff\xfe", which this case sent before, is UTF-16's BOM: 415 now).
    _assert_shape(client.post("/v1/qa", data=b"\xff{", content_type="application/json"), 400)


def test_unknown_route_404_and_wrong_method_405(client) -> None:
    _assert_shape(client.get("/v1/nothing"), 404)
    response = client.get("/v1/qa")
    _assert_shape(response, 405)
    assert "POST" in response.headers["Allow"]


def test_body_too_large_is_413_before_parsing(app_factory) -> None:
    client = app_factory(max_body_bytes=200).test_client()
    body = _assert_shape(client.post("/v1/qa", json={**QA, "article": "x" * 500}), 413)
    assert "max_body_bytes" in body["error"]


@pytest.mark.parametrize(
    ("path", "payload", "location"),
    [
        ("/v1/qa", {"article": "a"}, ["body", "question"]),
        ("/v1/qa", {**QA, "top_k": 0}, ["body", "top_k"]),
        ("/v1/qa", {**QA, "extra": 1}, ["body", "extra"]),
        ("/v1/qa", [1, 2], ["body"]),
        (
            "/v1/qa",
            {"instances": [QA, {"article": 5, "question": "q"}]},
            ["body", "instances", 1, "article"],
        ),
        ("/v1/profile", {"posts": []}, ["body", "posts"]),
        ("/v1/profile", {"posts": [None]}, ["body", "posts", 0]),
        ("/v1/similarity", {"pairs": [{"text_a": "a"}]}, ["body", "pairs", 0, "text_b"]),
    ],
)
def test_validation_errors_are_422_with_field_paths(client, path, payload, location) -> None:
    body = _assert_shape(client.post(path, json=payload), 422)
    assert location in [item["loc"] for item in body["detail"]]


def test_limits_are_422_naming_the_limit(app_factory) -> None:
    client = app_factory(
        max_chars_per_text=30, max_instances_per_batch=2, max_pairs_per_request=1, max_top_k=2
    ).test_client()
    cases = [
        ("/v1/qa", {**QA, "article": "x" * 31}, "max_chars_per_text"),
        ("/v1/qa", {**QA, "top_k": 3}, "max_top_k"),
        ("/v1/qa", {"instances": [QA, QA, QA]}, "max_instances_per_batch"),
        (
            "/v1/similarity",
            {"pairs": [{"text_a": "a", "text_b": "b"}] * 2},
            "max_pairs_per_request",
        ),
    ]
    for path, payload, limit in cases:
        body = _assert_shape(client.post(path, json=payload), 422)
        assert body["detail"][0]["limit"]["name"] == limit


def test_backend_down_is_503_with_retry_after(app_factory) -> None:
    nothing_listens = f"127.0.0.1:{free_port()}"
    client = app_factory(target=nothing_listens, retries=1).test_client()
    response = client.post("/v1/qa", json=QA)
    _assert_shape(response, 503)
    assert int(response.headers["Retry-After"]) >= 0
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "Retry-After" in ready.headers
    assert {item["model"] for item in ready.json["detail"]} == {"qa", "profile", "similarity"}
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("code", "delay", "status"),
    [
        (grpc.StatusCode.OK, 2.0, 504),  # sleeps past the deadline
        (grpc.StatusCode.INVALID_ARGUMENT, 0.0, 502),
        (grpc.StatusCode.NOT_FOUND, 0.0, 404),
        (grpc.StatusCode.INTERNAL, 0.0, 502),
        (grpc.StatusCode.UNAVAILABLE, 0.0, 503),
    ],
)
def test_backend_status_mapping(app_factory, failing_server, code, delay, status) -> None:
    target = failing_server(grpc.StatusCode.UNKNOWN if code is grpc.StatusCode.OK else code, delay)
    client = app_factory(target=target, request_timeout_seconds=0.3, retries=0).test_client()
    # version pinned: assets come from the repo, no status call needed
    body = _assert_shape(client.post("/v1/qa?version=1", json=QA), status)
    assert "tensorflow" not in body["error"] and "raw" not in body["error"]


HOSTILE = [
    b'{"article": "ab\\ud800c", "question": "q"}',  # lone surrogate
    b"[" * 50_000 + b"]" * 50_000,  # nesting deeper than the parser's recursion limit
    b'{"article": "a", "question": "q", "top_k": NaN}',
    b'{"article": "a", "question": "q", "top_k": 1e400}',
    b'{"article": "a", "question": "q", "top_k": true}',
    b'"just a string"',
    b"null",
    b'{"instances": {"article": "a"}}',
    b'{"instances": [[]]}',
    b'{"article": "\\u0000\\u200b", "question": "\\ufeff"}',
    b'{"posts": ["a", 3]}',
    b'{"pairs": [{"text_a": "\\ud83d", "text_b": "b"}]}',
]


@pytest.mark.parametrize("body", HOSTILE)
@pytest.mark.parametrize("path", ["/v1/qa", "/v1/profile", "/v1/similarity"])
def test_no_input_causes_a_500(client, path, body) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code < 500, response.get_data(as_text=True)
    assert set(response.json) >= {"model"} or set(response.json) == {"error", "detail"}


@pytest.mark.parametrize("query", ["version=99999999999999999999999", "version=-1", "label=a/b"])
def test_hostile_version_pins_are_422(client, query) -> None:
    _assert_shape(client.post(f"/v1/qa?{query}", json=QA), 422)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/qa?version=1&version=2",
        "/v1/qa?label=a&label=b",
        "/v1/models/qa/architecture.txt?version=1&version=1",
    ],
)
def test_repeated_query_keys_are_422(client, path) -> None:
    # Which value wins differs between proxies and frameworks: neither is picked.
    response = client.post(path, json=QA) if "architecture" not in path else client.get(path)
    _assert_shape(response, 422)
    assert response.json["detail"][0]["loc"][0] == "query"


def test_request_id_is_forwarded_as_grpc_metadata(app_factory, failing_server) -> None:
    target = failing_server(grpc.StatusCode.INTERNAL)
    client = app_factory(target=target, retries=0).test_client()
    response = client.post("/v1/qa?version=1", json=QA, headers={"X-Request-ID": "trace-42"})
    assert response.headers["X-Request-ID"] == "trace-42"
    assert failing_server.seen_metadata[-1]["x-request-id"] == "trace-42"
