"""A model repo edited under a running gateway: base_path moved, several tokenizers listed.

Found by the adversarial repo pass over broken or changing model repos.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE, MODELS_CONFIG_FILE, TOKENIZER_FILE
from serving.gateway.sources import MOVED
from serving.spec import SPEC_FILE
from serving.tokenization import file_sha256
from tests.api.conftest import gateway_app
from tests.integration.modelserver.helpers import wait_for
from tests.support.model_server import own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
CONFIG = 'model_config_list {{ config {{ name: "qa" base_path: "{}" }} }}'


def _swap_two_words(assets: Path) -> None:
    """Another tokenizer of the same size (two words trade ids), recorded in the card as an
    export would record it: every check of the version's own files passes."""
    tokenizer = assets / TOKENIZER_FILE
    data = json.loads(tokenizer.read_text())
    vocab = data["model"]["vocab"]
    vocab["mary"], vocab["john"] = vocab["john"], vocab["mary"]
    tokenizer.write_text(json.dumps(data))
    card = json.loads((assets / MODEL_CARD_FILE).read_text())
    card["tokenizer_sha256"] = {TOKENIZER_FILE: file_sha256(tokenizer)}
    (assets / MODEL_CARD_FILE).write_text(json.dumps(card))


def _version(client: Any) -> dict[str, Any]:
    response = client.get("/v1/models/qa")
    assert response.status_code == 200, response.json
    (version,) = response.json["versions"]
    return dict(version)


@pytest.mark.timeout(180)
def test_a_version_whose_base_path_moves_to_other_assets_is_not_routed(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # The model server, as TF Serving (AspiredVersionsManager only adds version numbers it
    # does not manage), keeps running version 1 as loaded from qa/; the gateway kept routing
    # it too, and would read answers/1's tokenizer as soon as its runtime was loaded again (a
    # new worker, a restart): two tokenizers for one version number. It is unfit meanwhile.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    shutil.copytree(tiny_repo / "qa", repo / "renamed")  # the same files elsewhere
    shutil.copytree(tiny_repo / "qa", repo / "answers")
    _swap_two_words(repo / "answers" / "1" / ASSETS_DIR)
    config = repo / MODELS_CONFIG_FILE
    config.write_text(CONFIG.format("qa"))
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client: Any = app.test_client()  # its .json is Any | None to mypy
        assert client.post("/v1/qa", json=QA).status_code == 200
        config.write_text(CONFIG.format("renamed"))
        assert _version(client)["routed"]  # the same assets: nothing changes
        (repo / "renamed").rename(repo / "away")  # gone for a moment: the server keeps it
        assert _version(client)["routed"]
        assert client.post("/v1/qa", json=QA).status_code == 200
        (repo / "away").rename(repo / "renamed")
        config.write_text(CONFIG.format("answers"))
        moved = _version(client)
        assert not moved["routed"] and moved["error"] == MOVED
        refused = client.post("/v1/qa", json=QA)
        assert refused.status_code == 503
        assert refused.json["detail"] == [{"version": 1, "reason": MOVED}]
        pinned = client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
        assert pinned.status_code == 404 and MOVED in pinned.json["error"]
        assert str(repo) not in json.dumps([moved, refused.json, pinned.json])
        config.write_text(CONFIG.format("qa"))  # back to the files it was loaded from
        assert _version(client)["routed"]
        assert client.post("/v1/qa", json=QA).status_code == 200


@pytest.mark.timeout(180)
def test_a_routed_versions_files_overwritten_in_place_are_not_routed(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # Found by the adversarial repo pass 6: another build copied over qa/1's files (the same
    # folder, so no move was seen) kept being routed with the first files' runtime, while a
    # worker started later read the new tokenizer: two tokenizers for one version number,
    # whichever model the server runs for it. Refused until the files it was checked on
    # are back.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    assets = repo / "qa" / "1" / ASSETS_DIR
    saved = {path.name: path.read_bytes() for path in assets.glob("*.json")}
    (repo / MODELS_CONFIG_FILE).write_text(CONFIG.format("qa"))
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client: Any = app.test_client()  # its .json is Any | None to mypy
        assert client.post("/v1/qa", json=QA).status_code == 200
        (assets / SPEC_FILE).touch()  # the same bytes: nothing changes
        assert _version(client)["routed"]
        _swap_two_words(assets)
        moved = _version(client)
        assert not moved["routed"] and moved["error"] == MOVED
        refused = client.post("/v1/qa", json=QA)
        assert refused.status_code == 503
        assert refused.json["detail"] == [{"version": 1, "reason": MOVED}]
        pinned = client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
        assert pinned.status_code == 404 and MOVED in pinned.json["error"]
        for name, data in saved.items():  # the files it was loaded with, back
            (assets / name).write_bytes(data)
        assert _version(client)["routed"]
        assert client.post("/v1/qa", json=QA).status_code == 200


@pytest.mark.timeout(180)
def test_every_tokenizer_of_a_version_is_listed_with_its_sha256(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # GET /v1/models gave one tokenizer_sha256, the first file's: a version whose question
    # tokenizer changed listed the same digest as before.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "qa")
    assets = repo / "qa" / "1" / ASSETS_DIR
    question = assets / "question_tokenizer.json"
    question.write_text(json.dumps(json.loads((assets / TOKENIZER_FILE).read_text()), indent=1))
    spec = json.loads((assets / SPEC_FILE).read_text())
    spec["inputs"][1]["tokenizer"] = question.name
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    (repo / MODELS_CONFIG_FILE).write_text(CONFIG.format("qa"))
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        version = _version(app.test_client())
        assert version["routed"]
        assert version["tokenizers_sha256"] == {
            TOKENIZER_FILE: file_sha256(assets / TOKENIZER_FILE),
            question.name: file_sha256(question),
        }
        assert version["tokenizer_sha256"] is None  # no one digest names both


@pytest.mark.timeout(180)
def test_a_version_symlink_repointed_at_other_assets_is_not_routed(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # Publishing by re-pointing a version's symlink (ln -sfn build-b qa/1): the model server
    # keeps running build-a's model for version 1, as TF Serving; the gateway kept build-a's
    # runtime and a new worker would read build-b's tokenizer. Not routed while it points
    # elsewhere; routed again once it points back.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa" / "1", repo / "builds" / "a")
    shutil.copytree(tiny_repo / "qa" / "1", repo / "builds" / "b")
    _swap_two_words(repo / "builds" / "b" / ASSETS_DIR)
    (repo / "qa").mkdir()
    link = repo / "qa" / "1"
    link.symlink_to(repo / "builds" / "a", target_is_directory=True)
    (repo / MODELS_CONFIG_FILE).write_text(CONFIG.format("qa"))

    def point_at(build: str) -> None:  # atomically, as ln -sfn with a rename does
        staging = repo / "qa" / ".next"
        staging.symlink_to(repo / "builds" / build, target_is_directory=True)
        staging.rename(link)

    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client: Any = app.test_client()  # its .json is Any | None to mypy
        assert client.post("/v1/qa", json=QA).status_code == 200
        point_at("b")
        moved = _version(client)
        assert not moved["routed"] and moved["error"] == MOVED
        assert client.post("/v1/qa", json=QA).status_code == 503
        point_at("a")
        assert _version(client)["routed"]
        assert client.post("/v1/qa", json=QA).status_code == 200


@pytest.mark.timeout(180)
def test_a_version_number_published_again_after_its_removal_is_checked_again(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # The model server unloads a version whose folder is removed (END) and loads a folder of
    # that number published later from its new files (TF Serving too); the gateway kept the
    # verdict and runtime of the first files, and routed the new model with them. Here the new
    # files are unfit (3 labels for 5 outputs): version 2 was routed with its old spec.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa" / "1", repo / "qa" / "1")
    shutil.copytree(tiny_repo / "qa" / "1", repo / "qa" / "2")
    every = 'config { name: "qa" base_path: "qa" model_version_policy { all {} } }'
    (repo / MODELS_CONFIG_FILE).write_text(f"model_config_list {{ {every} }}")
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client: Any = app.test_client()  # its .json is Any | None to mypy

        def states() -> dict[int, dict[str, Any]]:
            response = client.get("/v1/models/qa")
            return {item["version"]: item for item in response.json["versions"]}

        assert client.post("/v1/qa", json=QA).json["model"]["version"] == 2
        shutil.rmtree(repo / "qa" / "2")
        wait_for(lambda: states()[2]["state"] == "END", "version 2 unloaded")
        staging = repo / "qa" / ".staging-2"
        shutil.copytree(tiny_repo / "qa" / "1", staging)
        spec = json.loads((staging / ASSETS_DIR / SPEC_FILE).read_text())
        spec["heads"][0]["labels"] = spec["heads"][0]["labels"][:3]
        (staging / ASSETS_DIR / SPEC_FILE).write_text(json.dumps(spec))
        staging.rename(repo / "qa" / "2")
        wait_for(lambda: states()[2]["state"] == "AVAILABLE", "version 2 loaded again")
        again = states()[2]
        assert not again["routed"] and "[2, 3]" in again["error"]  # the example twice
        assert client.post("/v1/qa", json=QA).json["model"]["version"] == 1


@pytest.mark.timeout(180)
def test_a_version_0_is_served_pinned_as_unpinned(tiny_repo: Path, tmp_path: Path) -> None:
    # TF Serving and the local model server load a version folder "0" (any int64 >= 0), and
    # the gateway routed it when it was the only one; a request pinned to it was a 404 ("the
    # requested model version is not served": the path's rule took 0 for no version).
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa" / "1", repo / "qa" / "0")
    (repo / MODELS_CONFIG_FILE).write_text(CONFIG.format("qa"))
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client: Any = app.test_client()
        unpinned = client.post("/v1/qa", json=QA)
        assert unpinned.status_code == 200 and unpinned.json["model"]["version"] == 0
        pinned = client.post("/v1/models/qa/versions/0:predict", json={"inputs": QA})
        assert pinned.status_code == 200, pinned.json
        assert (
            client.post("/v1/models/qa/versions/2:predict", json={"inputs": QA}).status_code == 404
        )
