"""A models.config being rewritten (emptied, or removed, then written) changes no model.

Found by the adversarial repo pass 3. An editor or ``cat > models.config`` truncates the file
before writing it, and ``rm`` + copy removes it for a moment:

- empty (or only comments): the model server read it as a config without models and
  unloaded every one (each request 404 until the next config poll loaded them again), and
  the gateway answered 404 "unknown model". TF Serving's ``ServerCore::ReloadConfig`` takes
  no action for an empty config; only an explicit ``model_config_list {}`` removes them all.
- removed: the gateway fell back to training's layout (every folder holding versions is a
  model): a model whose base_path is not its name was 404 and unconfigured folders were
  listed (503), ``/readyz`` 503, while the model server kept serving its config.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import gateway_app
from tests.integration.modelserver.helpers import wait_for
from tests.support.model_server import ModelServerHandle, own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
# qa is served from a folder of another name; profile's folder holds versions but is no model.
CONFIG = 'model_config_list { config { name: "qa" base_path: "answers" } }\n'


@pytest.fixture(scope="module")
def rewritten_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("rewritten") / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "answers")
    shutil.copytree(tiny_repo / "profile", repo / "profile")
    (repo / "models.config").write_text(CONFIG)
    return repo


@pytest.fixture(scope="module")
def rewritten_server(rewritten_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(rewritten_repo, "it serves its own repo") as handle:
        yield handle


def _served_by_gateway(client: Any) -> None:
    assert [model["name"] for model in client.get("/v1/models").json["models"]] == ["qa"]
    answer = client.post("/v1/qa", json=QA)
    assert answer.status_code == 200, answer.json
    assert client.get("/readyz").status_code == 200


def _server_states(handle: ModelServerHandle) -> list[str]:
    with urllib.request.urlopen(f"{handle.rest_url}/v1/models/qa", timeout=10) as response:
        return [item["state"] for item in json.load(response)["model_version_status"]]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("text", ["", "# being written\n"], ids=["empty", "comments-only"])
def test_an_emptied_models_config_keeps_every_model(
    rewritten_repo: Path, rewritten_server: ModelServerHandle, text: str
) -> None:
    config = rewritten_repo / "models.config"
    with gateway_app(rewritten_repo, rewritten_server.grpc_target) as app:
        client: Any = app.test_client()
        _served_by_gateway(client)
        logged = rewritten_server.stderr_text().count("Taking no action for empty config")
        try:
            config.write_text(text)
            # The server's config poll (each second) has read it: before the fix it logged
            # "model config changed: serving []" and unloaded qa.
            wait_for(
                lambda: (
                    rewritten_server.stderr_text().count("Taking no action") > logged
                    or "removed from the config" in rewritten_server.stderr_text()
                ),
                "the model server's next config poll",
            )
            assert "removed from the config" not in rewritten_server.stderr_text()
            assert _server_states(rewritten_server) == ["AVAILABLE"]
            _served_by_gateway(client)
        finally:
            config.write_text(CONFIG)


@pytest.mark.timeout(120)
def test_a_models_config_removed_for_a_moment_keeps_the_routed_models(
    rewritten_repo: Path, rewritten_server: ModelServerHandle
) -> None:
    config = rewritten_repo / "models.config"
    with gateway_app(rewritten_repo, rewritten_server.grpc_target) as app:
        client: Any = app.test_client()
        _served_by_gateway(client)
        try:
            config.unlink()  # `rm models.config && cp new models.config`, half done
            _served_by_gateway(client)
            pinned = client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
            assert pinned.status_code == 200, pinned.json
        finally:
            config.write_text(CONFIG)
        _served_by_gateway(client)
