"""A version whose assets were unfit is checked again once they change; odd files never hang.

Found by the new-user trial: a version folder copied with ``cp -r`` is loaded by the model
server as soon as ``saved_model.pb`` and ``variables/`` are there; the gateway found it without
``serving_spec.json``, cached that verdict and never routed the version after the copy
finished (only a restart did). A tokenizer that is a FIFO blocked every worker on ``open``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR, TOKENIZER_FILE
from serving.spec import SPEC_FILE
from tests.api.conftest import gateway_app
from tests.support.model_server import ModelServerHandle, own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
CONFIG = """model_config_list {
  config { name: "qa" base_path: "qa" model_platform: "tensorflow"
           model_version_policy { all {} } }
}
"""


@pytest.fixture(scope="module")
def landing_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("landing") / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    (repo / "models.config").write_text(CONFIG)
    # Version 2: the copy of version 1 has not brought its assets.extra/ yet.
    shutil.copytree(repo / "qa" / "1", repo / "qa" / "2", ignore=shutil.ignore_patterns(ASSETS_DIR))
    # Version 3: its tokenizer is a FIFO (opening it would wait for a writer forever).
    shutil.copytree(repo / "qa" / "1", repo / "qa" / "3")
    (repo / "qa" / "3" / ASSETS_DIR / TOKENIZER_FILE).unlink()
    os.mkfifo(repo / "qa" / "3" / ASSETS_DIR / TOKENIZER_FILE)
    return repo


@pytest.fixture(scope="module")
def landing_server(landing_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(landing_repo, "it serves its own repo") as handle:
        yield handle


def _versions(client: Any) -> dict[int, dict[str, Any]]:
    response = client.get("/v1/models/qa")
    assert response.status_code == 200, response.json
    return {item["version"]: item for item in response.json["versions"]}


@pytest.mark.timeout(120)
def test_a_tokenizer_that_is_no_regular_file_is_refused_without_opening_it(
    landing_repo: Path, landing_server: ModelServerHandle
) -> None:
    with gateway_app(landing_repo, landing_server.grpc_target) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        third = _versions(client)[3]
        assert not third["routed"]
        assert third["error"] == "tokenizer tokenizer.json is missing or not a regular file"
        pinned = client.post("/v1/models/qa/versions/3:predict", json={"inputs": QA})
        assert pinned.status_code == 404 and "not a regular file" in pinned.json["error"]


@pytest.mark.timeout(120)
def test_a_version_is_routed_once_its_missing_assets_land(
    landing_repo: Path, landing_server: ModelServerHandle
) -> None:
    assets = landing_repo / "qa" / "2" / ASSETS_DIR
    with gateway_app(landing_repo, landing_server.grpc_target) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        before = _versions(client)[2]
        assert not before["routed"] and "no serving_spec.json" in str(before["error"])
        assert client.post("/v1/qa", json=QA).json["model"]["version"] == 1
        shutil.copytree(landing_repo / "qa" / "1" / ASSETS_DIR, assets)  # the copy lands
        after = _versions(client)[2]  # GET /v1/models/qa polls the model now
        assert after["routed"] and after["error"] == ""
        answer = client.post("/v1/qa", json=QA)
        assert answer.status_code == 200 and answer.json["model"]["version"] == 2
        (assets / SPEC_FILE).unlink()  # a routed version keeps its runtime (read once)
        assert _versions(client)[2]["routed"]


@pytest.mark.parametrize(
    "broken",
    [CONFIG[: CONFIG.index("qa")].encode(), CONFIG.encode() + b"\xff\xfe"],
    ids=["cut", "not-utf8"],
)
def test_a_broken_models_config_keeps_the_last_good_models(
    landing_repo: Path, landing_server: ModelServerHandle, broken: bytes
) -> None:
    # Found by the new-user trial: a half-written models.config made the gateway drop the
    # models after the cut (404 "unknown model" while the model server kept serving them, as
    # it keeps its last good config); one that was not UTF-8 made every endpoint a 500.
    config = landing_repo / "models.config"
    with gateway_app(landing_repo, landing_server.grpc_target) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        try:
            config.write_bytes(broken)
            assert [model["name"] for model in client.get("/v1/models").json["models"]] == ["qa"]
            assert client.post("/v1/qa", json=QA).status_code == 200
            assert client.get("/readyz").status_code == 200
        finally:
            config.write_text(CONFIG)
