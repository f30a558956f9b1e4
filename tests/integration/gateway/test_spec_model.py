"""A model no code knows, served from its spec alone: real Keras export, model server, gunicorn.

The test builds a tiny Keras model (two text inputs -> a categorical head and a regression
head), exports it with ``training.export.export_for_serving``, and answers through real
gunicorn and the real local model server over the generic ``:predict`` endpoint. Then a
second version whose labels changed is exported into the live repo: answers switch to the new
labels while requests keep flowing, and none fails.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from serving.contract import TOKENIZER_FILE
from serving.gateway.launcher import RunningGateway, running_gateway
from serving.spec import CategoricalHead, RegressionHead, ServingSpec, TextInput
from tests.support.model_server import ModelServerHandle, own_model_server

pytestmark = pytest.mark.slow
NAME = "pair_rater"
EXAMPLE = {"premise": "A man plays a guitar.", "hypothesis": "A person makes music."}
LABELS_1 = ["agree", "disagree", "unsure"]
LABELS_2 = ["supports", "refutes", "unrelated", "partly"]
CORPUS = [
    "a man plays a guitar",
    "a person makes music",
    "the cat sleeps on the mat",
    "a woman reads a book in the park",
    "nobody is playing anything",
]


def pair_spec(labels: list[str], vocab_size: int) -> ServingSpec:
    """Two text inputs -> a categorical ``verdict`` and a regression ``strength``."""
    return ServingSpec(
        title="Tiny pair rater",
        inputs=[
            TextInput(field=field, tensor=f"{field}_ids", max_tokens=16, vocab_size=vocab_size)
            for field in ("premise", "hypothesis")
        ],
        heads=[
            CategoricalHead(output="verdict_probs", field="verdict", labels=labels, top_k=2),
            RegressionHead(output="strength", field="strength", unit="points", scale=10.0),
        ],
        example=EXAMPLE,
    )


def export(repo: Path, tokenizer: Path, labels: list[str], version: int) -> None:
    """Build the tiny Keras model for ``labels`` and export it as ``version``."""
    import keras

    from training.export import export_for_serving
    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(version)
    vocab = 64
    spec = pair_spec(labels, vocab)
    inputs = {
        item.tensor: keras.Input((None,), dtype="int32", name=item.tensor) for item in spec.inputs
    }
    embedding = keras.layers.Embedding(vocab, 8)
    pooled = [MaskedMeanPooling()(embedding(ids), ids) for ids in inputs.values()]
    features = keras.layers.Concatenate()(pooled)
    outputs = {
        "verdict_probs": keras.layers.Dense(
            len(labels), activation="softmax", name="verdict_probs"
        )(features),
        "strength": keras.layers.Dense(1, name="strength")(features),
    }
    model = keras.Model(inputs, outputs)
    export_for_serving(
        model, spec, {TOKENIZER_FILE: tokenizer}, name=NAME, repo=repo, version=version
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tokenization import train_tokenizer

    root = tmp_path_factory.mktemp("spec_model")
    tokenizer = root / TOKENIZER_FILE
    train_tokenizer(CORPUS, vocab_size=64).save(str(tokenizer))
    export(root / "repo", tokenizer, LABELS_1, version=1)  # registers it in models.config
    return root / "repo"


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(repo, "it serves the test's own repo") as handle:
        yield handle


@pytest.fixture(scope="module")
def gateway(repo: Path, server: ModelServerHandle) -> Iterator[RunningGateway]:
    env = {
        "GATEWAY_BACKEND": "grpc",
        "GATEWAY_GRPC_TARGET": server.grpc_target,
        "GATEWAY_MODEL_REPO": str(repo),
        "GATEWAY_VERSION_POLL_SECONDS": "0.3",
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    with running_gateway(env, workers=2, threads=2, ready_path="/readyz") as running:
        yield running


def predict(url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{url}/v1/models/{NAME}:predict", json=body, timeout=10)


def test_generic_endpoint_answers_from_the_spec(gateway: RunningGateway) -> None:
    single = predict(gateway.url, {"inputs": EXAMPLE})
    assert single.status_code == 200, single.text
    outputs = single.json()["outputs"]
    assert single.json()["model"] == {"name": NAME, "version": 1}
    assert outputs["verdict"]["label"] in LABELS_1
    assert list(outputs["verdict"]["probabilities"]) == LABELS_1
    assert len(outputs["verdict"]["candidates"]) == 2
    assert outputs["strength"]["unit"] == "points"
    batch = predict(gateway.url, {"instances": [EXAMPLE, {**EXAMPLE, "premise": "a cat"}]})
    assert [len(item) for item in batch.json()["predictions"]] == [2, 2]
    invalid = predict(gateway.url, {"inputs": {"premise": "a"}})
    assert invalid.status_code == 422
    assert invalid.json()["detail"][0]["loc"] == ["body", "inputs", "hypothesis"]
    document = requests.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert f"/v1/models/{NAME}:predict" in document["paths"]
    assert "PairRaterInstance" in document["components"]["schemas"]
    assert verdict_enum(gateway.url) == LABELS_1


def verdict_enum(url: str) -> list[str]:
    """The verdict labels /openapi.json documents (from the routed version's spec)."""
    schemas = requests.get(f"{url}/openapi.json", timeout=10).json()["components"]["schemas"]
    return list(schemas["PairRaterVerdictAnswer"]["properties"]["label"]["enum"])


@dataclass
class Traffic:
    """Requests sent in a loop from a thread: (status, version, verdict labels) of each."""

    url: str
    seen: list[tuple[int, int, list[str]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            response = predict(self.url, {"inputs": EXAMPLE})
            body = response.json()
            version = body.get("model", {}).get("version", 0)
            labels = list(body.get("outputs", {}).get("verdict", {}).get("probabilities", {}))
            self.seen.append((response.status_code, version, labels))


def test_hot_reloaded_version_with_new_labels(repo: Path, gateway: RunningGateway) -> None:
    traffic = Traffic(gateway.url)
    sender = threading.Thread(target=traffic.run, daemon=True)
    sender.start()
    try:
        export(repo, repo.parent / TOKENIZER_FILE, LABELS_2, version=2)

        def switched() -> bool:
            answer = predict(gateway.url, {"inputs": EXAMPLE}).json()
            return bool(answer["model"]["version"] == 2)

        deadline = threading.Event()
        for _ in range(300):  # bounded: 300 x 0.2 s
            if switched() and switched() and switched():  # both workers have switched
                break
            deadline.wait(0.2)
        else:
            pytest.fail("version 2 was not routed in time")
    finally:
        traffic.stop.set()
        sender.join(timeout=30)
    assert traffic.seen, "no request was sent during the reload"
    assert {status for status, _, _ in traffic.seen} == {200}, "a request failed"
    assert {version for _, version, _ in traffic.seen} == {1, 2}
    for _, version, labels in traffic.seen:
        assert labels == (LABELS_1 if version == 1 else LABELS_2)
    answer = predict(gateway.url, {"inputs": EXAMPLE}).json()
    assert answer["outputs"]["verdict"]["label"] in LABELS_2
    detail = requests.get(f"{gateway.url}/v1/models/{NAME}", timeout=10).json()
    assert detail["spec"]["heads"][0]["labels"] == LABELS_2
    assert verdict_enum(gateway.url) == LABELS_2  # the docs follow the reload
    assert [item["version"] for item in detail["versions"] if item["routed"]] == [2]
