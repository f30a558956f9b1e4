"""Model names and labels the gateway passes on to the model server, over gRPC and REST.

Found by the adversarial repo pass 7: a model named ``é`` in models.config was never routed
(its checks' gRPC request ids held the name, and gRPC metadata is printable ASCII: "signature
metadata failed (internal)"); over REST a model named ``qa?x`` sent its calls to ``qa`` with a
query, and ``?label=..`` resolved to the latest version (urllib3 removed the dot segment of
``/v1/models/qa/labels/../metadata``) where the server has no such label; /openapi.json
wrote such names into its paths as they were.

A model of your own served under an alias's name (``similarity`` or ``profile``, here the qa
model: one categorical ``answer`` head) gives no alias answer: /openapi.json listed
``/v1/similarity`` and ``/v1/profile`` for it anyway, and a request ran the model before its
502 said only "does not give this endpoint's answers".
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
OTHER_HEADS = ("similarity", "profile")  # names of aliases whose heads the qa model lacks
INSTANCE = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


@pytest.fixture(scope="module")
def named_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("names") / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "qa" model_platform: "tensorflow" }}\n'
        for name in NAMES + OTHER_HEADS
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


def test_an_alias_is_neither_documented_nor_run_for_a_model_without_its_heads(
    named_repo, named_server
) -> None:
    with gateway_app(named_repo, named_server.grpc_target, retries=0) as app:
        client = app.test_client()
        paths = client.get("/openapi.json").get_json()["paths"]
        assert "/v1/qa" in paths  # the qa model has the categorical head /v1/qa reads
        assert "/v1/similarity" not in paths and "/v1/profile" not in paths
        bodies = {
            "similarity": {"pairs": [INSTANCE]},
            "profile": INSTANCE,
        }
        for name, body in bodies.items():
            response = client.post(f"/v1/{name}", json=body)
            assert response.status_code == 502, response.get_json()
            message = response.get_json()["error"]
            assert message.startswith(f"model '{name}' version 1 does not give this endpoint's")
            assert f"use POST /v1/models/{name}:predict" in message
            assert (
                client.post(f"/v1/models/{name}:predict", json={"inputs": INSTANCE}).status_code
                == 200
            )
        metrics = client.get("/metrics").get_data(as_text=True)
    # Refused before the backend call: no backend stage was timed for these two models.
    assert 'stage_duration_seconds_count{model="similarity",stage="backend"} 1.0' in metrics
    assert 'stage_duration_seconds_count{model="profile",stage="backend"} 1.0' in metrics
