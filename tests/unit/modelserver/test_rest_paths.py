"""REST paths the model server's Flask app would rewrite: answered as TF Serving, no redirect."""

from __future__ import annotations

import pytest

from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import create_rest_app


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1//models/qa"),
        ("GET", "/v1/models//qa/metadata"),
        ("POST", "/v1//models/qa:predict"),
        ("GET", "//healthz"),
        ("GET", "/monitoring//prometheus/metrics"),
    ],
)
def test_doubled_slashes_are_no_redirect_to_the_clients_host(method: str, path: str) -> None:
    """werkzeug merged the slashes with a 308 HTML page whose Location was built from the
    client's Host header; TF Serving's URL patterns do not match such a path."""
    metrics = ServerMetrics()
    manager = ModelManager([], metrics, poll_seconds=0)
    app = create_rest_app(manager, metrics, "/monitoring/prometheus/metrics", lambda: True)
    response = app.test_client().open(path, method=method, headers={"Host": "evil.example"})
    assert response.status_code in (400, 404) and "Location" not in response.headers
    assert "Malformed request" in response.get_json()["error"]


def _app():
    metrics = ServerMetrics()
    return create_rest_app(ModelManager([], metrics, poll_seconds=0), metrics, "/metrics", bool)


@pytest.mark.parametrize(
    "path", ["/v1/models/qa/versions/{}:predict", "/v1/models/qa/versions/{}/metadata"]
)
def test_a_version_of_thousands_of_digits_is_400(path: str) -> None:
    """int() refuses more than 4300 digits: its ValueError was a 500 with a traceback."""
    method = "POST" if path.endswith(":predict") else "GET"
    response = _app().test_client().open(path.format("9" * 5000), method=method)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("Failed to convert version: 999")


@pytest.mark.parametrize("path", ["/v1/models/qa", "/v1", "/healthz", "/readyz", "/metrics"])
def test_options_is_a_json_405(path: str) -> None:
    """Flask answered OPTIONS itself: an empty text/html 200."""
    response = _app().test_client().options(path)
    assert response.status_code == 405 and response.is_json
    assert response.get_json() == {"error": f"Malformed request: OPTIONS {path}"}
    assert "GET" in response.headers["Allow"] and "OPTIONS" not in response.headers["Allow"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/healthz", 200),
        ("GET", "/v1/models/qa", 404),
        ("POST", "/v1/models/qa:predict", 404),
    ],
)
def test_a_websocket_handshake_is_answered_as_plain_http(method: str, path: str, status: int):
    """Found by hostile pass 7: werkzeug took ``Connection: Upgrade`` + ``Upgrade: websocket``
    as a ``ws://`` request no rule takes: every path was a 400 HTML page ("The browser (or
    proxy) sent a request that this server could not understand"). TF Serving's HTTP server
    ignores ``Upgrade`` (RFC 9110 section 7.8 allows it): the request's own answer, in JSON."""
    headers = {"Connection": "Upgrade", "Upgrade": "websocket"}
    response = _app().test_client().open(path, method=method, data=b"{}", headers=headers)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.get_json(), dict)
