"""A version that does not fit its spec is never routed: the reason shows, the old one serves."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.contract import ASSETS_DIR
from serving.gateway.runtime import load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import SPEC_FILE
from tests.api.conftest import gateway_app
from tests.support.legacy_repo import make_legacy
from tests.support.model_server import ModelServerHandle, own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
# qa keeps two versions loaded, so version 1 stays servable beside the unfit version 2.
CONFIG = """model_config_list {
  config { name: "qa" base_path: "qa" model_platform: "tensorflow"
           model_version_policy { latest { num_versions: 2 } }
           version_labels { key: "canary" value: 2 } }
  config { name: "profile" base_path: "profile" model_platform: "tensorflow" }
  config { name: "similarity" base_path: "similarity" model_platform: "tensorflow" }
}
"""


def _write_spec(repo: Path, model: str, version: int, change) -> None:
    spec = load_runtime(repo, model, 1, GatewaySettings()).spec.model_dump(mode="json")
    change(spec)
    (repo / model / str(version) / ASSETS_DIR / SPEC_FILE).write_text(json.dumps(spec))


def _fewer_labels(spec: dict[str, Any]) -> None:
    spec["heads"][0]["labels"] = spec["heads"][0]["labels"][:3]


def _renamed_input(spec: dict[str, Any]) -> None:
    spec["inputs"][0]["tensor"] = "left"


@pytest.fixture(scope="module")
def unfit_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = Path(shutil.copytree(tiny_repo, tmp_path_factory.mktemp("unfit") / "repo"))
    (repo / "models.config").write_text(CONFIG)
    shutil.copytree(repo / "qa" / "1", repo / "qa" / "2")
    _write_spec(repo, "qa", 2, _fewer_labels)  # 3 labels for 5 outputs
    _write_spec(repo, "similarity", 1, _renamed_input)  # no such signature input
    make_legacy(repo / "profile" / "1", "profile")  # exported before the serving spec
    return repo


@pytest.fixture(scope="module")
def unfit_server(unfit_repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(unfit_repo, "it serves its own repo") as handle:
        yield handle


@pytest.fixture
def unfit_client(unfit_repo: Path, unfit_server: ModelServerHandle) -> Iterator[object]:
    with gateway_app(unfit_repo, unfit_server.grpc_target) as app:
        yield app.test_client()


def test_unfit_versions_are_listed_with_short_reasons(unfit_client) -> None:
    response = unfit_client.get("/v1/models")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "/tmp" not in text and "tensorflow" not in text.lower()
    models = {model["name"]: model for model in response.json["models"]}
    qa = {version["version"]: version for version in models["qa"]["versions"]}
    assert qa[1]["routed"] and not qa[2]["routed"]
    # the fit check runs the example twice (one row per instance): 2 rows
    assert "example" in qa[2]["error"] and "[2, 3]" in qa[2]["error"]
    similarity = models["similarity"]
    assert "signature inputs differ" in similarity["versions"][0]["error"]
    assert "left" in similarity["error"] and not similarity["versions"][0]["routed"]


def test_previous_good_version_keeps_answering(unfit_client) -> None:
    assert unfit_client.post("/v1/qa", json=QA).json["model"]["version"] == 1
    generic = unfit_client.post("/v1/models/qa:predict", json={"inputs": QA})
    assert generic.json["model"]["version"] == 1
    pinned = unfit_client.post("/v1/models/qa/versions/2:predict", json={"inputs": QA})
    assert pinned.status_code == 404 and "not routed" in pinned.json["error"]


def test_a_pinned_request_to_a_version_not_yet_checked_is_checked_first(
    unfit_repo: Path, unfit_server: ModelServerHandle
) -> None:
    # Found by the adversarial repo pass: a version the gateway had not checked yet (loaded by
    # the model server since the last poll) was called for a request pinned to it, unchecked:
    # here a 502 from its 3 labels for 5 outputs; a model answering logits got a 200.
    with gateway_app(unfit_repo, unfit_server.grpc_target, version_poll_seconds=3600) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        pinned = client.post("/v1/models/qa/versions/2:predict", json={"inputs": QA})
        assert pinned.status_code == 404, pinned.json
        assert "not routed: the spec's example gave unusable outputs" in pinned.json["error"]
        labelled = client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
        assert labelled.status_code == 200


def test_readiness_names_the_model_without_a_good_version(unfit_client) -> None:
    ready = unfit_client.get("/readyz")
    assert ready.status_code == 503
    assert [item["model"] for item in ready.json["detail"]] == ["similarity"]
    pairs = {"pairs": [{"text_a": "a", "text_b": "b"}]}
    response = unfit_client.post("/v1/similarity", json=pairs)
    assert response.status_code == 503 and set(response.json) == {"error", "detail"}


def test_every_loaded_version_failed_its_spec_check(unfit_client) -> None:
    # Found by a new-user trial: answered "has no available version", as a dead server was.
    # Similarity's only version names a signature input its model does not have.
    response = unfit_client.post("/v1/similarity", json={"pairs": [{"text_a": "a", "text_b": "b"}]})
    assert response.status_code == 503 and "Retry-After" in response.headers
    body = response.get_json()
    assert body["error"] == "no loaded version of model 'similarity' fits its serving spec"
    (version,) = body["detail"]
    assert version["version"] == 1 and "signature inputs differ" in version["reason"]


@pytest.mark.parametrize(
    ("ready_models", "status"),
    [(("qa", "profile"), 200), (("similarity",), 503), (("qa", "nosuchmodel"), 503)],
)
def test_readiness_waits_only_for_the_required_models(
    unfit_repo: Path, unfit_server: ModelServerHandle, ready_models: tuple[str, ...], status: int
) -> None:
    # One broken model must not take a shared pod out of its Service (GATEWAY_READY_MODELS).
    with gateway_app(unfit_repo, unfit_server.grpc_target, ready_models=ready_models) as app:
        ready = app.test_client().get("/readyz")
    body = ready.get_json()
    assert ready.status_code == status
    if status == 200:
        assert set(body["models"]) == {"qa", "profile"}
        assert [item["model"] for item in body["not_ready"]] == ["similarity"]
    else:
        blocking = {item["model"] for item in body["detail"]}
        assert blocking == set(ready_models) - {"qa"}


def test_a_legacy_version_is_served_like_a_spec_one(unfit_client) -> None:
    detail = unfit_client.get("/v1/models/profile").json
    assert detail["legacy"] is True
    assert [head["field"] for head in detail["spec"]["heads"]] == ["age", "income_group", "gender"]
    alias = unfit_client.post("/v1/profile", json={"posts": ["a post"]})
    assert alias.status_code == 200, alias.json
    assert alias.json["income_group"]["is_proxy"] is True
    generic = unfit_client.post("/v1/models/profile:predict", json={"inputs": {"posts": ["a"]}})
    assert generic.json["outputs"]["income_group"]["description"].startswith("rule ")


def test_a_label_naming_an_unfit_version_is_a_503(unfit_client) -> None:
    # Found by the adversarial repo pass 7: the server's label named version 2, which the
    # gateway refuses (3 labels for 5 outputs), and the client was told 404, its own fault.
    response = unfit_client.post("/v1/qa?label=canary", json=QA)
    assert response.status_code == 503 and "Retry-After" in response.headers
    message = response.get_json()["error"]
    assert message.startswith("model 'qa' label 'canary' names version 2, which is not routed: ")
    assert unfit_client.post("/v1/qa?version=2", json=QA).status_code == 404  # as before
