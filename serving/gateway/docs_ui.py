"""``/docs``: Swagger UI on ``/openapi.json``, served from local files (no CDN, works offline).

Swagger UI's JavaScript and CSS are the files the ``flask-swagger-ui`` package ships (Swagger UI
5, which renders OpenAPI 3.1); the page and its start-up script are the gateway's own
(``docs_static/``). The page's Content-Security-Policy lets scripts, styles and requests come
from the gateway's own origin only, so the page cannot reach another host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory

from serving.gateway.web import ignore_unusable_range, refuse_unknown_query

SWAGGER_UI_DIR = Path(str(files("flask_swagger_ui") / "dist"))
OWN_DIR = Path(__file__).resolve().parent / "docs_static"
# The only files /docs/static serves: the page needs nothing else (no map files, no presets).
ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": SWAGGER_UI_DIR,
    "swagger-ui.css": SWAGGER_UI_DIR,
    "favicon-32x32.png": SWAGGER_UI_DIR,
    "docs.js": OWN_DIR,
    "docs.css": OWN_DIR,
}
ASSET_MAX_AGE_SECONDS = 3600
# img-src allows data: because swagger-ui.css draws its icons as data: SVGs.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
# Relative URLs: the page lives at <root>/docs, so they resolve under <root>/ even when a
# proxy mounts the gateway under a path prefix.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>multihead-serving gateway API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="stylesheet" href="docs/static/docs.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
<header class="gateway-docs">
<p>Machine-readable: <a href="openapi.json">/openapi.json</a>.
Each model's architecture: <code>GET /v1/models/{name}/architecture.png</code> (diagram) and
<code>GET /v1/models/{name}/architecture.txt</code> (layer summary);
model names: <a href="v1/models">/v1/models</a>.</p>
<ul id="architecture-links"></ul>
</header>
<div id="swagger-ui" data-openapi-url="openapi.json" data-models-url="v1/models"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/static/docs.js"></script>
</body>
</html>
"""

blueprint = Blueprint("docs_ui", __name__)
blueprint.before_request(refuse_unknown_query)  # the query rule of every endpoint


def docs_response() -> Response:
    """The ``/docs`` page (``text/html``): Swagger UI loading ``openapi.json`` beside it."""
    response = Response(PAGE, content_type="text/html; charset=utf-8")
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/docs/static/<path:name>")
def docs_asset(name: str) -> Response:
    """One of the files in ``ASSETS`` (Content-Type from its extension); any other name is 404.

    Names are looked up in ``ASSETS``, never joined to a directory as given, so ``..`` or an
    absolute path cannot reach other files.
    """
    directory = ASSETS.get(name)
    if directory is None:
        abort(404)
    ignore_unusable_range()
    response = send_from_directory(directory, name, max_age=ASSET_MAX_AGE_SECONDS)
    response.headers.update(SECURITY_HEADERS)
    return response
