"""The gateway process must not import TensorFlow (~3 s and ~600 MB per worker)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from serving.gateway.app import create_app
from serving.gateway.settings import GatewaySettings
for backend in ("grpc", "rest"):
    app = create_app(GatewaySettings(backend=backend, model_repo=sys.argv[1]))
    app.test_client().get("/healthz")
    app.test_client().get("/openapi.json")
loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"tensorflow", "keras"})
print(loaded)
"""


def test_gateway_does_not_import_tensorflow(tmp_path) -> None:
    # An empty model repo: one that does not exist stops the gateway at start.
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
