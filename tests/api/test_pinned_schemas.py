"""The pinned paths' OpenAPI schemas describe every fit version a pin may reach.

Found serving a model of one's own in two versions (newuser8): version 2 renamed a label and
added a head, version 1 stayed behind the label ``stable``. ``/labels/stable:predict``
answered by version 1's spec (label ``c``, no ``urgent`` head) while ``/openapi.json``
described that path with version 2's schemas only, so the answer broke the document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from serving.contract import ASSETS_DIR, TOKENIZER_FILE
from serving.gateway.openapi import openapi_document
from serving.spec import BinaryHead, CategoricalHead, RegressionHead, ServingSpec, TextInput
from tests.api.conftest import gateway_app
from tests.support.model_server import ModelServerHandle, own_model_server

CONFIG = """model_config_list {
  config { name: "topics" base_path: "topics" model_platform: "tensorflow"
           model_version_policy { specific { versions: 1 versions: 2 } }
           version_labels { key: "stable" value: 1 } }
}
"""
BODY = {"inputs": {"text": "Mary went to the kitchen."}}


def _spec(vocab: int, labels: list[str], urgent: bool) -> ServingSpec:
    extra = [BinaryHead(output="urgent_prob", field="urgent", labels=("no", "yes"))]
    return ServingSpec(
        title="Topics",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab)],
        heads=[
            CategoricalHead(output="topic_probs", field="topic", labels=labels),
            RegressionHead(output="size", field="size"),
            *(extra if urgent else []),
        ],
        example={"text": "Mary went to the kitchen."},
    )


@pytest.fixture(scope="module")
def two_version_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer

    from training.tiny import export_spec_model

    repo = tmp_path_factory.mktemp("pinned") / "repo"
    tokenizer = tiny_repo / "qa" / "1" / ASSETS_DIR / TOKENIZER_FILE
    vocab = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
    files = {TOKENIZER_FILE: tokenizer}
    export_spec_model(repo, _spec(vocab, ["a", "b", "c"], False), "topics", files, version=1)
    export_spec_model(repo, _spec(vocab, ["a", "b", "d"], True), "topics", files, version=2)
    (repo / "models.config").write_text(CONFIG)
    return repo


@pytest.fixture(scope="module")
def pinned_server(two_version_repo: Path) -> Iterator[Any]:
    with own_model_server(two_version_repo, "it serves its own repo") as server:
        yield server


@pytest.fixture
def client(two_version_repo: Path, pinned_server: ModelServerHandle) -> Iterator[Any]:
    with gateway_app(two_version_repo, pinned_server.grpc_target) as app:
        yield app.test_client()


def _check(document: dict[str, Any], path: str, body: dict[str, Any], part: str) -> None:
    operation = document["paths"][path]["post"]
    if part == "request":
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
    else:
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    # The components go beside the schema so its "#/components/schemas/..." refs resolve.
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]})
    assert validator.is_valid(body), list(validator.iter_errors(body))[:3]


def test_a_label_pinned_answer_matches_the_document(client) -> None:
    pinned = "/v1/models/topics/labels/stable:predict"
    answer = client.post(pinned, json=BODY)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["model"]["version"] == 1
    assert "urgent" not in answer.get_json()["outputs"]
    routed = client.post("/v1/models/topics:predict", json=BODY)
    assert routed.get_json()["model"]["version"] == 2
    document = client.get("/openapi.json").get_json()
    documented = "/v1/models/topics/labels/{label}:predict"
    for path, sent in ((documented, answer), ("/v1/models/topics:predict", routed)):
        _check(document, path, BODY, "request")
        _check(document, path, sent.get_json(), "response")
    # The routed path still documents the routed version alone, under its own names.
    names = document["components"]["schemas"]
    assert "TopicsPredictResponse" in names and "TopicsV1PredictResponse" in names
    assert "TopicsV2PredictResponse" not in names
    unpinned = document["paths"]["/v1/models/topics:predict"]["post"]["responses"]["200"]
    assert "TopicsV1PredictResponse" not in str(unpinned)
    version_path = document["paths"]["/v1/models/topics/versions/{version}:predict"]["post"]
    assert "TopicsV1PredictResponse" in str(version_path["responses"]["200"])


def test_the_document_is_built_again_only_when_the_served_versions_change(client) -> None:
    """It was built on every GET, generating each pinned version's request models again."""
    registry = client.application.extensions["gateway"].registry
    before = client.get("/openapi.json").get_json()  # version 2 routed, 1 not checked yet
    assert "TopicsV1PredictResponse" not in before["components"]["schemas"]
    assert openapi_document(registry) is openapi_document(registry)  # not built again
    assert client.get("/openapi.json").get_json() == before
    # Pinned, version 1 is checked fit: a version a pin reaches now, so the document changes.
    assert client.post("/v1/models/topics/labels/stable:predict", json=BODY).status_code == 200
    after = client.get("/openapi.json").get_json()
    assert "TopicsV1PredictResponse" in after["components"]["schemas"]
    assert openapi_document(registry) is openapi_document(registry)
