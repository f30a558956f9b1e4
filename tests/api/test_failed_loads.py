"""A pinned version the model server failed to load: a server-side 503 that says so."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import gateway_app
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
