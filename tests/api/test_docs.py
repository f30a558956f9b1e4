"""/docs through the whole gateway app: its headers, and the error shape of a bad asset."""

from __future__ import annotations

import pytest


def test_docs_page_and_assets_through_the_gateway(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "X-Request-ID" in page.headers
    bundle = client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.mimetype == "text/javascript"


def test_unknown_asset_is_the_gateways_404(client) -> None:
    missing = client.get("/docs/static/swagger-ui-bundle.js.map")
    assert missing.status_code == 404
    assert set(missing.json) == {"error", "detail"}


def test_a_range_past_the_end_is_416_with_content_range(client) -> None:
    # RFC 9110 section 15.5.17: a 416 to a byte range names the length, "bytes */LENGTH".
    whole = client.get("/docs/static/docs.css")
    response = client.get("/docs/static/docs.css", headers={"Range": "bytes=999999-"})
    assert response.status_code == 416 and set(response.json) == {"error", "detail"}
    assert response.headers["Content-Range"] == f"bytes */{len(whole.data)}"


@pytest.mark.parametrize("value", ["garbage", "bytes=0-1,4-5", "items=0-1", "bytes=5-2"])
def test_a_range_that_is_not_one_byte_range_is_ignored(client, value: str) -> None:
    # Found by the new-user trial: werkzeug answered these 416 (RFC 9110 section 14.2: a
    # server may ignore a Range, and must ignore one of an unknown unit).
    whole = client.get("/docs/static/docs.css")
    response = client.get("/docs/static/docs.css", headers={"Range": value})
    assert response.status_code == 200 and response.data == whole.data


def test_qa_evidence_is_documented_under_both_names(client) -> None:
    # "segment" as the segment_weights head answers on :predict; "sentence" kept for the
    # first API's clients (the README says so).
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    evidence = schemas["Evidence"]
    assert set(evidence["properties"]) == {"segment", "sentence", "weight"}
    assert set(evidence["required"]) == {"segment", "sentence", "weight"}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_every_status_of_the_plain_endpoints_is_documented(app_factory, path: str) -> None:
    # /readyz answered 503 and every endpoint 422 to an unknown query key (the README says
    # both), but the document listed only 200; /metrics is 401 without a key when keys are set.
    apps = [app_factory(ready_models=["absent"]), app_factory(api_keys=["a-key-of-16-chars"])]
    for app in apps:
        client = app.test_client()
        documented = client.get("/openapi.json").json["paths"][path]["get"]["responses"]
        for response in (client.get(path), client.get(f"{path}?x=1")):
            assert str(response.status_code) in documented, (path, response.status_code)
            if response.status_code != 200:
                assert set(response.json) == {"error", "detail"}
                assert "content" in documented[str(response.status_code)]
