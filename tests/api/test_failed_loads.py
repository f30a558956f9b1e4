"""A pinned version the model server failed to load, or is still loading: a server-side 503
that says so, not the 404 of a version that does not exist."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from serving.protos import tfs_wire_pb2 as wire
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import relay
from tests.support.model_server import ModelServerHandle, own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
# Both versions wanted: version 1 loads, version 2 (its graph unreadable) fails to.
CONFIG = """model_config_list {
  config { name: "qa" base_path: "qa" model_platform: "tensorflow"
           model_version_policy { all {} } }
}
"""


@pytest.fixture(scope="module")
def broken_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("failed_load") / "repo"
    shutil.copytree(tiny_repo / "qa" / "1", repo / "qa" / "1")
    shutil.copytree(tiny_repo / "qa" / "1", repo / "qa" / "2")  # the gateway's assets are fine
    (repo / "qa" / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")
    (repo / "models.config").write_text(CONFIG)
    return repo


@pytest.fixture(scope="module")
def broken_server(broken_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(broken_repo, "it serves its own repo") as handle:
        yield handle


@pytest.fixture
def broken_client(broken_repo: Path, broken_server: ModelServerHandle) -> Iterator[object]:
    with gateway_app(broken_repo, broken_server.grpc_target) as app:
        yield app.test_client()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/models/qa/versions/2:predict", {"inputs": QA}),
        ("/v1/qa?version=2", QA),
    ],
)
def test_a_pinned_version_that_failed_to_load_is_a_503_saying_so(
    broken_client, broken_repo: Path, path: str, body: dict[str, object]
) -> None:
    # It was a 404 (as a version that does not exist: the client's fault) though the model
    # server reports the version END with its load's error (GetModelStatus).
    response = broken_client.post(path, json=body)
    assert response.status_code == 503, response.get_data(as_text=True)
    answer = response.get_json()
    assert set(answer) == {"error", "detail"}
    assert "version 2" in answer["error"] and "failed to load" in answer["error"]
    assert int(response.headers["Retry-After"]) >= 1
    text = response.get_data(as_text=True)
    assert str(broken_repo) not in text and "/tmp" not in text
    assert "tensorflow" not in text.lower() and "Loading failed" not in text
    # The version that loaded still serves, and one no server knows is still the client's 404.
    assert broken_client.post(path.replace("2", "1"), json=body).status_code == 200
    assert broken_client.post(path.replace("2", "7"), json=body).status_code == 404


def test_a_pinned_version_still_loading_is_a_503_saying_so(
    tiny_repo: Path, model_server: ModelServerHandle
) -> None:
    # The same kind: a version the server reports START or LOADING (a large SavedModel, a
    # slow warm-up) was a 404 for a request pinned to it, as one that does not exist.
    def loading(method: str, request: bytes, context: grpc.ServicerContext, forward) -> bytes:
        if method != "GetModelStatus":
            context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request")
        answer = wire.GetModelStatusResponse.FromString(forward(request))
        for status in answer.model_version_status:
            status.state = wire.ModelVersionStatus.LOADING
        return answer.SerializeToString()

    with relay(model_server.grpc_target, loading) as target, gateway_app(tiny_repo, target) as app:
        response = app.test_client().post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
    assert response.status_code == 503, response.get_data(as_text=True)
    answer = response.get_json()
    assert (
        answer["error"] == "model 'qa' version 1 is still loading on the model server; retry later"
    )
    assert answer["detail"] == [{"version": 1, "state": "LOADING"}]
    assert "Retry-After" in response.headers
