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
