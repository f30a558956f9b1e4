"""/docs through the whole gateway app: its headers, and the error shape of a bad asset."""

from __future__ import annotations


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
