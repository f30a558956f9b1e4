"""A model whose spec names a signature other than ``serving_default`` is served by it.

``training.export.export_for_serving`` writes the spec's ``signature_name`` (Keras adds a
``serving_default`` beside it). Here the version is saved again with a ``serving_default``
that answers something else (as a SavedModel with several signatures may): the gateway must
check and call the spec's signature (TF Serving's ``ModelSpec.signature_name``), over gRPC
and REST against the real local model server, and in-process (the ``local`` backend).
Before, every backend asked for ``serving_default``, so this version was unfit ("signature
outputs differ") and never routed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from serving.contract import TOKENIZER_FILE
from serving.spec import CategoricalHead, ServingSpec, TextInput
from tests.support.model_server import ModelServerHandle, own_model_server
from tests.support.served_gateway import backend_client

pytestmark = pytest.mark.slow
NAME = "rater"
SIGNATURE = "rate_text"
LABELS = ["calm", "angry"]
CORPUS = ["the sea is calm today", "he shouted in anger", "a quiet calm morning"]


def export(repo: Path, tokenizer: Path) -> None:
    """One text input -> one categorical head, exported under ``SIGNATURE`` only."""
    import keras

    from training.export import export_for_serving
    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(3)
    spec = ServingSpec(
        title="Tiny rater",
        signature_name=SIGNATURE,
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=32)],
        heads=[CategoricalHead(output="mood_probs", field="mood", labels=LABELS)],
        example={"text": "the sea is calm"},
    )
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    pooled = MaskedMeanPooling()(keras.layers.Embedding(32, 4)(ids), ids)
    probs = keras.layers.Dense(len(LABELS), activation="softmax", name="mood_probs")(pooled)
    model = keras.Model({"text_ids": ids}, {"mood_probs": probs})
    export_for_serving(model, spec, {TOKENIZER_FILE: tokenizer}, name=NAME, repo=repo, version=1)
    with_decoy(repo / NAME / "1")


def with_decoy(path: Path) -> None:
    """Save the version again with a ``serving_default`` of other outputs (assets kept)."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))

    def length(text_ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"length": tf.cast(tf.shape(text_ids)[1:], tf.float32)}

    ids = tf.TensorSpec([None, None], tf.int32, name="text_ids")
    decoy = tf.function(length, input_signature=[ids])
    signatures = {SIGNATURE: loaded.signatures[SIGNATURE], "serving_default": decoy}
    tf.saved_model.save(loaded, str(path), signatures=signatures)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.tokenization import train_tokenizer

    root = tmp_path_factory.mktemp("signature_name")
    tokenizer = root / TOKENIZER_FILE
    train_tokenizer(CORPUS, vocab_size=32).save(str(tokenizer))
    export(root / "repo", tokenizer)
    return root / "repo"


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[ModelServerHandle]:
    with own_model_server(repo, "it serves the test's own repo") as handle:
        yield handle


@pytest.fixture(params=["grpc", "rest", "local"])
def client(
    request: pytest.FixtureRequest, repo: Path, server: ModelServerHandle
) -> Iterator[FlaskClient]:
    with backend_client(repo, server, request.param) as client:
        yield client


def test_the_saved_models_serving_default_is_not_the_specs_signature(repo: Path) -> None:
    import tensorflow as tf

    signatures = tf.saved_model.load(str(repo / NAME / "1")).signatures
    assert sorted(signatures) == sorted([SIGNATURE, "serving_default"])
    assert list(signatures["serving_default"].structured_outputs) == ["length"]


def test_a_version_under_its_specs_signature_is_routed_and_answers(client: FlaskClient) -> None:
    answer = client.post(f"/v1/models/{NAME}:predict", json={"instances": [{"text": "calm sea"}]})
    assert answer.status_code == 200, answer.get_json()
    mood = answer.get_json()["predictions"][0]["mood"]
    assert mood["label"] in LABELS
    detail = client.get(f"/v1/models/{NAME}").get_json()
    assert [item["routed"] for item in detail["versions"]] == [True]
    assert set(detail["signature"]["inputs"]) == {"text_ids"}
    assert set(detail["signature"]["outputs"]) == {"mood_probs"}
