"""An unusual but legitimate model, served from its spec alone, answers what Keras predicts.

Four inputs (three texts, one cut from the left, and a list of texts), one of them with the
request field ``model_config`` (a name pydantic reserves); every head kind (categorical with
2 and with 7 labels, some unicode or number-like, binary and multilabel with thresholds,
regression with scale, offset and clip, score over [-1, 1], segment weights); a list-output
model, one input of int64 ids and one head computed in float16 (mixed precision). Exported
with ``export_for_serving`` and served over gRPC and REST by the real local model server and
in-process: each readable answer is the spec's reading of ``model.predict`` on the same ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from serving.contract import TOKENIZER_FILE
from serving.encoding import encode_instances
from serving.spec import (
    BinaryHead,
    CategoricalHead,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
    ServingSpec,
    TextInput,
    TextsInput,
)
from serving.tokenization import load_tokenizer
from tests.support.model_server import ModelServerHandle, own_model_server
from tests.support.served_gateway import backend_client

pytestmark = pytest.mark.slow
NAME = "anything"
VOCAB = 64
CORPUS = [
    "mary moved to the bathroom . john went to the hallway .",
    "the cat sleeps on the mat",
    "a man plays a guitar",
    "finished my thesis draft today",
]
SPEC = ServingSpec(
    title="Every head kind",
    inputs=[
        TextInput(field="story", tensor="story_ids", max_tokens=24, vocab_size=VOCAB),
        TextInput(
            field="question", tensor="question_ids", max_tokens=6, vocab_size=VOCAB,
            truncation="left",
        ),
        TextInput(field="model_config", tensor="config_ids", max_tokens=8, vocab_size=VOCAB),
        TextsInput(
            field="posts", tensor="post_ids", max_tokens=32, vocab_size=VOCAB, separator="[SEP]"
        ),
    ],
    heads=[
        CategoricalHead(output="yes_no", field="yes_no", labels=["no", "yes"]),
        CategoricalHead(
            output="grade", field="grade", labels=["1", "2", "10", "été", "日本", "-3.5", "x"],
            top_k=3,
        ),
        BinaryHead(output="spam", field="spam", labels=("ham", "spam"), threshold=0.3),
        MultilabelHead(output="tags", field="tags", labels=["a", "b", "c"], threshold=0.5),
        RegressionHead(
            output="age", field="age", unit="years", scale=10.0, offset=20.0, clip=(0.0, 100.0)
        ),
        ScoreHead(output="tone", field="tone", range=(-1.0, 1.0)),
        SegmentWeightsHead(
            output="evidence", field="evidence", input_field="story",
            rule=SegmentRule(separator_token=".", max_segments=4), top_k=2,
        ),
    ],
    example={
        "story": "mary moved to the bathroom . john went to the hallway .",
        "question": "where is mary",
        "model_config": "the cat",
        "posts": ["finished my thesis", "a man plays"],
    },
)  # fmt: skip
INSTANCES = [
    SPEC.example,
    {
        "story": "the cat sleeps on the mat . a man plays . mary went to the hallway .",
        "question": "? ? ? ? ? where did the cat sleep",
        "model_config": "a guitar and a mat",
        "posts": ["today"],
    },
]


def build_model() -> Any:
    """Masked encoders per input (``config_ids`` int64), one Dense per head; list outputs."""
    import keras

    from training.layers import MaskedMeanPooling

    keras.utils.set_random_seed(11)
    inputs = [
        keras.Input((None,), dtype="int64" if item.tensor == "config_ids" else "int32",
                    name=item.tensor)
        for item in SPEC.inputs
    ]  # fmt: skip
    embedding = keras.layers.Embedding(VOCAB, 8)
    features = keras.layers.Concatenate()(
        [MaskedMeanPooling()(embedding(ids), ids) for ids in inputs]
    )
    dense = keras.layers.Dense
    outputs = [
        dense(2, activation="softmax", name="yes_no")(features),
        dense(7, activation="softmax", name="grade", dtype="mixed_float16")(features),
        dense(1, activation="sigmoid", name="spam")(features),
        dense(3, activation="sigmoid", name="tags")(features),
        dense(1, name="age")(features),
        dense(1, activation="tanh", name="tone")(features),
        dense(4, activation="softmax", name="evidence")(features),
    ]
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The repo and what Keras predicts for ``INSTANCES`` (output name -> float64 array)."""
    from training.export import export_for_serving
    from training.tokenization import train_tokenizer

    root = tmp_path_factory.mktemp("any_model")
    tokenizer = root / TOKENIZER_FILE
    train_tokenizer(CORPUS, vocab_size=VOCAB).save(str(tokenizer))
    model = build_model()
    export_for_serving(model, SPEC, {TOKENIZER_FILE: tokenizer}, name=NAME, repo=root / "repo")
    ids = encode_instances(SPEC, {TOKENIZER_FILE: load_tokenizer(tokenizer)}, INSTANCES)
    predicted = model.predict(ids, verbose=0)
    expected = {
        name: np.asarray(value, np.float64)
        for name, value in zip(model.output_names, predicted, strict=True)
    }
    return root / "repo", expected


@pytest.fixture(scope="module")
def server(exported: tuple[Path, dict[str, Any]]) -> Iterator[ModelServerHandle]:
    with own_model_server(exported[0], "it serves the test's own repo") as handle:
        yield handle


@pytest.fixture(params=["grpc", "rest", "local"])
def client(
    request: pytest.FixtureRequest,
    exported: tuple[Path, dict[str, Any]],
    server: ModelServerHandle,
) -> Iterator[FlaskClient]:
    with backend_client(exported[0], server, request.param) as client:
        yield client


def close(value: float, expected: float) -> bool:
    return bool(np.isclose(value, expected, rtol=2e-3, atol=1e-5))  # float16 head: 2e-3


def check_answer(answer: dict[str, Any], keras: dict[str, Any], row: int) -> None:
    """``answer`` is the spec's reading of Keras's outputs for instance ``row``."""
    assert list(answer) == [head.field for head in SPEC.heads]
    for head in SPEC.heads[:2]:  # categorical: every label's probability, best first
        assert isinstance(head, CategoricalHead)
        probabilities = answer[head.field]["probabilities"]
        assert list(probabilities) == head.labels
        for label, value in zip(head.labels, keras[head.output][row], strict=True):
            assert close(probabilities[label], value)
        candidates = answer[head.field]["candidates"]
        assert len(candidates) == head.top_k
        assert candidates[0]["label"] == answer[head.field]["label"]
        assert answer[head.field]["label"] == max(probabilities, key=probabilities.__getitem__)
    spam = float(keras["spam"][row, 0])
    assert answer["spam"]["label"] == ("spam" if spam >= 0.3 else "ham")
    assert close(answer["spam"]["probability"], spam if spam >= 0.3 else 1 - spam)
    tags = zip("abc", keras["tags"][row], strict=True)  # on both sides of the threshold
    assert answer["tags"]["labels"] == [label for label, p in tags if p >= 0.5]
    assert close(answer["age"]["value"], min(max(keras["age"][row, 0] * 10 + 20, 0), 100))
    assert answer["age"]["unit"] == "years"
    assert close(answer["tone"]["value"], keras["tone"][row, 0])
    story = INSTANCES[row]["story"]
    weights = sorted(keras["evidence"][row][: story.count(".")], reverse=True)[:2]
    assert len(answer["evidence"]) == 2  # top_k of the story's sentences, heaviest first
    for item, weight in zip(answer["evidence"], weights, strict=True):
        assert close(item["weight"], weight) and item["segment"] in story


def test_every_backend_answers_what_keras_predicts(
    client: FlaskClient, exported: tuple[Path, dict[str, Any]]
) -> None:
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": INSTANCES})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["model"] == {"name": NAME, "version": 1}
    for row, answer in enumerate(body["predictions"]):
        check_answer(answer, exported[1], row)
    single = client.post(f"/v1/models/{NAME}:predict", json={"inputs": INSTANCES[1]})
    assert single.status_code == 200, single.get_json()
    check_answer(single.get_json()["outputs"], exported[1], 1)  # alone: other widths, same reading
    missing = {key: value for key, value in INSTANCES[0].items() if key != "model_config"}
    refused = client.post(f"/v1/models/{NAME}:predict", json={"inputs": missing})
    assert refused.status_code == 422
    assert refused.get_json()["detail"][0]["loc"] == ["body", "inputs", "model_config"]
