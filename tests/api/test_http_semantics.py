"""HTTP semantics a hostile or careless client runs into, on every route kind, both app paths.

Found by the second adversarial pass over the request layer (branch edge2): each case failed
before its fix. The raw-socket forms of the framing cases, under real gunicorn, are in
``tests/integration/gateway/test_http_edge.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

QA = {"article": "Mary went to the office. John went to the garden.", "question": "Where is Mary?"}
# (path, a valid body) for each kind of route that reads a body
BODIES = [
    ("/v1/qa", QA),
    ("/v1/qa?version=1", QA),  # a query string: Flask, not the fast path
    ("/v1/models/qa:predict", {"inputs": QA}),
    ("/v1/models/qa/versions/1:predict", {"instances": [QA]}),
    ("/v1/profile", {"posts": ["I like hiking."]}),
    ("/v1/similarity", {"pairs": [{"text_a": "A cat sits.", "text_b": "A dog runs."}]}),
]


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], list)
    return body


def _allowed(response: Any) -> set[str]:
    return {method.strip() for method in response.headers["Allow"].split(",")}


@pytest.fixture(params=[True, False], ids=["fast-path", "flask"])
def any_client(request: pytest.FixtureRequest, app_factory: Any) -> Any:
    return app_factory(fast_path=request.param).test_client()


@pytest.mark.parametrize(("path", "payload"), BODIES)
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_a_utf16_or_utf32_body_is_415(any_client, path, payload, encoding) -> None:
    # RFC 8259 section 8.1: JSON exchanged between systems MUST be UTF-8. Python's json
    # still reads UTF-16/32 (RFC 4627 allowed it), so such a body was answered 200 when no
    # charset said so (and 415 when one did).
    body = json.dumps(payload).encode(encoding)
    response = any_client.post(path, data=body, content_type="application/json")
    assert "not UTF-8" in _error(response, 415)["error"]
    assert any_client.post(path, json=payload).status_code == 200  # the same JSON in UTF-8


@pytest.mark.parametrize(("path", "payload"), BODIES[:3])
def test_a_utf8_bom_is_ignored(any_client, path, payload) -> None:
    # RFC 8259 section 8.1: a parser MAY ignore a byte order mark (unchanged behaviour).
    body = b"\xef\xbb\xbf" + json.dumps(payload).encode()
    assert any_client.post(path, data=body, content_type="application/json").status_code == 200


@pytest.mark.parametrize(("path", "payload"), BODIES)
def test_a_body_without_length_or_chunks_is_411(any_client, path, payload) -> None:
    # Neither Content-Length nor chunked (an HTTP/1.0 client that omits the header): by RFC
    # 9112 section 6.3 the body is empty, and the client was told 400 "the body is not valid
    # JSON: Expecting value" about JSON it did send. werkzeug's client sends no
    # Content-Length for an empty body, as such a client does.
    response = any_client.post(path, data=b"", content_type="application/json")
    assert "Content-Length" in _error(response, 411)["error"]
    # An explicit empty body is still the 400 of a body that is not JSON.
    empty = any_client.post(
        path, data=b"", content_type="application/json", environ_overrides={"CONTENT_LENGTH": "0"}
    )
    assert _error(empty, 400)["error"] == "the body is not valid JSON"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1//qa"),
        ("POST", "/v1/models//qa:predict"),
        ("GET", "/v1//models"),
        ("GET", "/v1/models//qa"),
        ("GET", "//healthz"),
    ],
)
def test_doubled_slashes_are_404_json_not_a_redirect(any_client, method, path) -> None:
    # werkzeug merged the slashes with a 308 whose HTML page and Location named the client's
    # Host header: no JSON, and a POST redirected.
    response = any_client.open(path, method=method, json=QA if method == "POST" else None)
    _error(response, 404)
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/qa:classify",
        "/v1/models/qa:regress",
        "/v1/models/qa:PREDICT",
        "/v1/models/:predict",
        "/v1/models/qa:predict:",
    ],
)
def test_a_verb_the_gateway_does_not_serve_is_404(any_client, path) -> None:
    # GET /v1/models/<name> took 'qa:classify' as a name, so a POST there was a 405 'method
    # not allowed' (as if the URL were right) whose Allow header offered GET.
    response = any_client.post(path, json={"inputs": QA})
    _error(response, 404)
    assert "Allow" not in response.headers


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_predict_with_another_method_allows_post_only(any_client, method) -> None:
    # PUT /v1/models/qa:predict answered Allow: GET, OPTIONS, HEAD, POST, and a GET then
    # answered 405 'predict takes POST' with Allow: POST.
    response = any_client.open("/v1/models/qa:predict", method=method)
    _error(response, 405)
    assert _allowed(response) == {"POST", "OPTIONS"}


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/qa", {"POST", "OPTIONS"}),
        ("/v1/models/qa:predict", {"POST", "OPTIONS"}),
        ("/v1/models/qa", {"GET", "OPTIONS", "HEAD"}),
        ("/healthz", {"GET", "OPTIONS", "HEAD"}),
    ],
)
def test_options_is_204_with_allow_and_no_body(any_client, path, allowed) -> None:
    # It was a 200 whose empty body was labelled text/html.
    response = any_client.options(path)
    assert response.status_code == 204
    assert _allowed(response) == allowed
    assert "Content-Type" not in response.headers and response.get_data() == b""


@pytest.mark.parametrize("target", ["example.com:443", "127.0.0.1:8501", "/healthz", "/v1/qa"])
def test_connect_is_not_implemented(any_client, target) -> None:
    # CONNECT host:port was a JSON 404 "The requested URL was not found" (and CONNECT
    # /healthz a 405 naming GET): only a proxy opens a tunnel (RFC 9110 section 9.3.6), so the
    # gateway supports CONNECT for no resource, 501 (section 15.6.2).
    body = _error(any_client.open(target, method="CONNECT"), 501)
    assert body["error"] == "CONNECT is not supported: the gateway is no proxy"


def test_options_asterisk_asks_about_the_server(any_client) -> None:
    # OPTIONS * (the server in general, RFC 9110 section 9.3.7) was a JSON 404; it is answered
    # as the gateway's OPTIONS of a resource: 204, every method some route takes, no body.
    response = any_client.open("*", method="OPTIONS")
    assert response.status_code == 204
    assert _allowed(response) == {"GET", "HEAD", "OPTIONS", "POST"}
    assert "Content-Type" not in response.headers and response.get_data() == b""
    _error(any_client.open("/*", method="OPTIONS"), 404)  # a path of "*" is no such request


@pytest.mark.parametrize("given", ["a,b", "one, two", ",", "id-1,other-client-id"])
def test_a_request_id_with_a_comma_is_replaced(any_client, given) -> None:
    # A merged backend call forwards its members' ids comma-separated (coalescing): a client
    # id 'a,b' read as two requests' ids there, and made another client's id appear in the
    # model server's logs. Two X-Request-ID header lines reach the app joined by a comma too.
    response = any_client.post("/v1/qa", json=QA, headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    kept = any_client.post("/v1/qa", json=QA, headers={"X-Request-ID": "a;b=c d"})
    assert kept.headers["X-Request-ID"] == "a;b=c d"


WEBSOCKET = {"Connection": "keep-alive, Upgrade", "Upgrade": "websocket"}


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [("GET", "/v1/models", None), ("GET", "/v1/models/qa", None), ("GET", "/healthz", None)]
    + [("POST", path, payload) for path, payload in BODIES[:3]],
)
def test_a_websocket_handshake_is_answered_as_plain_http(any_client, method, path, payload) -> None:
    """Found by hostile pass 7: werkzeug's URL map took a request with ``Upgrade: websocket``
    as a ``ws://`` one that no rule takes: every Flask route answered 400 "The browser (or
    proxy) sent a request that this server could not understand" (the fast path answered
    200). The gateway speaks no WebSocket; RFC 9110 section 7.8 lets it ignore ``Upgrade``."""
    plain = any_client.open(path, method=method, json=payload)
    upgrading = any_client.open(path, method=method, json=payload, headers=WEBSOCKET)
    assert upgrading.status_code == plain.status_code == 200, upgrading.get_data(as_text=True)
    assert upgrading.headers["Content-Type"] == "application/json"
