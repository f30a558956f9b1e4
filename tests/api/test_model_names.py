"""Model names and labels the gateway passes on to the model server, over gRPC and REST.

Found by the adversarial repo pass 7: a model named ``é`` in models.config was never routed
(its checks' gRPC request ids held the name, and gRPC metadata is printable ASCII: "signature
metadata failed (internal)"); over REST a model named ``qa?x`` sent its calls to ``qa`` with a
query, and ``?label=..`` resolved to the latest version (urllib3 removed the dot segment of
``/v1/models/qa/labels/../metadata``) where the server has no such label; /openapi.json
wrote such names into its paths as they were.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from serving.gateway.app import create_app
from serving.gateway.backends.rest_backend import RestBackend
from tests.api.conftest import gateway_app, gateway_settings
from tests.support.model_server import ModelServerHandle, own_model_server
from tests.support.served_gateway import close_app

NAMES = ("qa", "é", "q a", "qa?x")
INSTANCE = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


@pytest.fixture(scope="module")
def named_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("names") / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "qa" model_platform: "tensorflow" }}\n'
        for name in NAMES
    )
    (repo / "models.config").write_text(f"model_config_list {{\n{entries}}}\n")
    return repo


@pytest.fixture(scope="module")
def named_server(named_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(named_repo, "serves its own models.config") as handle:
        yield handle


def _predict(app, name: str) -> int:
    path = f"/v1/models/{quote(name, safe='')}:predict"
    return int(app.test_client().post(path, json={"instances": [INSTANCE]}).status_code)


def test_a_model_named_past_ascii_is_checked_and_routed(named_repo, named_server) -> None:
    with gateway_app(named_repo, named_server.grpc_target, retries=0) as app:
        assert {name: _predict(app, name) for name in NAMES} == dict.fromkeys(NAMES, 200)
        paths = app.test_client().get("/openapi.json").get_json()["paths"]
    # OpenAPI paths are URLs: "/v1/models/qa?x:predict" had "Try it out" post to model qa.
    assert {"/v1/models/qa%3Fx:predict", "/v1/models/q%20a", "/v1/models/%C3%A9:predict"} <= set(
        paths
    )


def test_names_and_labels_reach_the_rest_server_as_sent(named_repo, named_server) -> None:
    settings = gateway_settings(named_repo, retries=0)
    app = create_app(settings, backend=RestBackend(named_server.rest_url, retry=None))
    try:
        assert {name: _predict(app, name) for name in NAMES} == dict.fromkeys(NAMES, 200)
        for label in ("..", "."):
            response = app.test_client().post(f"/v1/qa?label={label}", json=INSTANCE)
            assert response.status_code == 404, response.get_json()
            assert response.get_json()["error"] == f"model 'qa' has no version labelled '{label}'"
    finally:
        close_app(app)
