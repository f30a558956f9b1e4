"""/docs and /docs/static: the page, its headers, and which files the static route serves."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving.gateway import docs_ui


@pytest.fixture
def client() -> FlaskClient:
    app = Flask(__name__)
    app.register_blueprint(docs_ui.blueprint)
    app.add_url_rule("/docs", view_func=docs_ui.docs_response)
    return app.test_client()


def test_page_points_at_local_assets_and_the_openapi_document(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.content_type == "text/html; charset=utf-8"
    text = page.get_data(as_text=True)
    assert 'data-openapi-url="openapi.json"' in text
    assert "/v1/models/{name}/architecture.png" in text
    assert "/v1/models/{name}/architecture.txt" in text
    assert "://" not in text, "every URL in the page is relative to the gateway"
    sources = [part.split('"')[1] for part in text.split('src="')[1:]]
    sources += [part.split('"')[1] for part in text.split('href="')[1:]]
    for source in sources:
        if source.startswith("docs/static/"):
            assert client.get(f"/{source}").status_code == 200, source


def test_page_headers_allow_only_the_own_origin(client: FlaskClient) -> None:
    headers = client.get("/docs").headers
    policy = dict(part.split(" ", 1) for part in headers["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src"):
        assert policy[directive] == "'self'"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("docs.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("docs.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_assets_are_served_with_their_type(
    client: FlaskClient, name: str, content_type: str
) -> None:
    asset = client.get(f"/docs/static/{name}")
    assert asset.status_code == 200
    assert asset.mimetype == content_type
    assert asset.headers["X-Content-Type-Options"] == "nosniff"
    assert len(asset.get_data()) > 100


@pytest.mark.parametrize(
    "name",
    [
        "swagger-ui-bundle.js.map",
        "index.html",
        "oauth2-redirect.html",
        "../docs_ui.py",
        "..%2Fdocs_ui.py",
        "../../../../etc/passwd",
        "%2Fetc%2Fpasswd",
        "docs.js/",
        "LICENSE",
    ],
)
def test_other_paths_are_404(client: FlaskClient, name: str) -> None:
    # follow_redirects: werkzeug first redirects "//" in a path to "/" (merge_slashes)
    assert client.get(f"/docs/static/{name}", follow_redirects=True).status_code == 404
