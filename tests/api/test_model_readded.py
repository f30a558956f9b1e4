"""A model removed from models.config and put back from other files is checked afresh.

Found by the adversarial repo pass 3: the gateway never polled a model once it left
``models.config``, so what it knew of its versions outlived the model server's unloading it.
Put back under another ``base_path`` (another build, version 1 again), the server loaded it
afresh, while the gateway refused version 1 as moved for good (503 until a restart) or kept
routing with the runtime checked on the old files (the old labels).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR
from serving.spec import SPEC_FILE
from tests.api.conftest import gateway_app
from tests.integration.modelserver.helpers import wait_for
from tests.support.model_server import ModelServerHandle, own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


def _config(repo: Path, qa_base: str | None) -> None:
    entry = f'config {{ name: "qa" base_path: "{qa_base}" }}' if qa_base else ""
    (repo / "models.config").write_text(
        f'model_config_list {{ config {{ name: "keep" base_path: "old" }} {entry} }}\n'
    )


@pytest.fixture(scope="module")
def readded_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("readded") / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "old")
    shutil.copytree(tiny_repo / "qa", repo / "new")
    spec_file = repo / "new" / "1" / ASSETS_DIR / SPEC_FILE
    spec = json.loads(spec_file.read_text())
    spec["heads"][0]["labels"] = [f"{label}-new" for label in spec["heads"][0]["labels"]]
    spec_file.write_text(json.dumps(spec))  # another build's answers, same model shape
    _config(repo, "old")
    return repo


@pytest.fixture(scope="module")
def readded_server(readded_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(readded_repo, "it serves its own repo") as handle:
        yield handle


def _server_has_qa(handle: ModelServerHandle) -> bool:
    try:
        with urllib.request.urlopen(f"{handle.rest_url}/v1/models/qa", timeout=10) as response:
            states = [item["state"] for item in json.load(response)["model_version_status"]]
    except urllib.error.HTTPError:
        return False
    return "AVAILABLE" in states


def _server_dropped_qa(handle: ModelServerHandle) -> bool:
    try:
        with urllib.request.urlopen(f"{handle.rest_url}/v1/models/qa", timeout=10):
            return False
    except urllib.error.HTTPError as error:
        return error.code == 404


@pytest.mark.timeout(180)
def test_a_model_put_back_from_other_files_is_checked_again(
    readded_repo: Path, readded_server: ModelServerHandle
) -> None:
    with gateway_app(readded_repo, readded_server.grpc_target) as app:
        client: Any = app.test_client()
        answer = client.post("/v1/qa", json=QA)
        assert answer.status_code == 200 and not answer.json["answer"].endswith("-new")
        _config(readded_repo, None)  # qa removed ...
        # Until the server has dropped qa (NOT_FOUND) a poll may see version 1 UNLOADING, that
        # is still running the old files, and the gateway rightly keeps what it knows of it:
        # waiting only for "not AVAILABLE" made the test fail on a loaded machine.
        wait_for(lambda: _server_dropped_qa(readded_server), "the server dropping qa")
        assert client.get("/readyz").status_code == 200  # a poll of the gateway sees it
        assert client.post("/v1/qa", json=QA).status_code == 404
        _config(readded_repo, "new")  # ... and put back from another build
        wait_for(lambda: _server_has_qa(readded_server), "the server loading qa afresh")
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.json
        answer = client.post("/v1/qa", json=QA)
        assert answer.status_code == 200, answer.json
        assert answer.json["answer"].endswith("-new")
        (version,) = client.get("/v1/models/qa").json["versions"]
        assert version["routed"] and version["error"] == ""
