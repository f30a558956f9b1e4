"""A tiny Keras tagger (Embedding -> Dense softmax per token) served end to end.

Exported with ``export_for_serving``, served by the real local model server over gRPC and
REST and in-process: each labelled word is the argmax of ``model.predict`` at that word's
first sub-token, with character offsets into the text as sent (punctuation, runs of spaces,
accents and CJK, a word of three WordPiece sub-tokens, truncation, a left-padded input).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from serving.contract import TOKENIZER_FILE
from serving.encoding import encode_instances
from serving.spec import ServingSpec, TextInput, TokenLabelsHead
from serving.tokenization import load_tokenizer
from tests.support.model_server import ModelServerHandle, own_model_server
from tests.support.served_gateway import backend_client

pytestmark = pytest.mark.slow
NAME = "tagger"
WORDS = "hello world paris , ! . un ##believ ##able zurich 日 本 the cat mary went to"
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS.split()]
LABELS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
SPEC = ServingSpec(
    title="A tagger",
    inputs=[
        TextInput(field="text", tensor="ids", max_tokens=12, vocab_size=len(VOCAB)),
        TextInput(
            field="left_text", tensor="left_ids", max_tokens=8, vocab_size=len(VOCAB),
            padding="left",
        ),
    ],
    heads=[
        TokenLabelsHead(
            output="tags", field="entities", input_field="text", labels=LABELS,
            outside_label="O", scheme="IOB2",
        ),
        TokenLabelsHead(
            output="left_tags", field="left_tokens", input_field="left_text", labels=LABELS,
            aggregation="none",
        ),
    ],
    example={"text": "mary went to paris .", "left_text": "the cat"},
)  # fmt: skip
TEXTS = [
    "Hello,  world!   Paris",  # punctuation, runs of spaces
    "Mary went to Zürich 日本.",  # accents stripped, one word per CJK character
    "unbelievable cat",  # three sub-tokens, one word
    "the cat went to paris , the cat went to paris , mary",  # truncated after 10 tokens
]
LEFT_TEXTS = ["the cat", "unbelievable  mary", "hello", "the cat went to paris , the cat"]
INSTANCES = [{"text": a, "left_text": b} for a, b in zip(TEXTS, LEFT_TEXTS, strict=True)]


def tokenizer() -> Tokenizer:
    """A BERT-like WordPiece tokenizer ([CLS] text [SEP]; lowercased, accents stripped)."""
    made = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    made.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    made.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    made.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    made.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    return made


def build_model() -> Any:
    """Per token: a wide random embedding, then a Dense softmax (peaked, so no near ties)."""
    import keras

    keras.utils.set_random_seed(5)
    outputs = {}
    inputs = {key: keras.Input((None,), dtype="int32", name=key) for key in ("ids", "left_ids")}
    for key, name in (("ids", "tags"), ("left_ids", "left_tags")):
        wide = keras.initializers.RandomNormal(stddev=3.0)
        embedded = keras.layers.Embedding(len(VOCAB), 8, embeddings_initializer=wide)(inputs[key])
        outputs[name] = keras.layers.Dense(len(LABELS), activation="softmax", name=name)(embedded)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The repo and Keras's per-token outputs for ``INSTANCES`` at the right-padded row's
    positions (the left input predicted left-padded, as trained, and moved back)."""
    from training.export import export_for_serving

    root = tmp_path_factory.mktemp("tagger")
    path = root / TOKENIZER_FILE
    tokenizer().save(str(path))
    model = build_model()
    export_for_serving(model, SPEC, {TOKENIZER_FILE: path}, name=NAME, repo=root / "repo")
    ids = encode_instances(SPEC, {TOKENIZER_FILE: load_tokenizer(path)}, INSTANCES)
    lengths = (ids["left_ids"] != 0).sum(axis=1)
    width = ids["left_ids"].shape[1]
    left = np.zeros_like(ids["left_ids"])
    for row, length in enumerate(lengths):
        left[row, width - length :] = ids["left_ids"][row, :length]
    predicted = model.predict({"ids": ids["ids"], "left_ids": left}, verbose=0)
    back = np.zeros_like(predicted["left_tags"])
    for row, length in enumerate(lengths):
        back[row, :length] = predicted["left_tags"][row, width - length :]
    return root / "repo", {"tags": predicted["tags"], "left_tags": back, "ids": ids}


@pytest.fixture(scope="module")
def server(exported: tuple[Path, dict[str, Any]]) -> Iterator[ModelServerHandle]:
    with own_model_server(exported[0], "it serves the test's own repo") as handle:
        yield handle


@pytest.fixture(params=["grpc", "rest", "local"])
def client(
    request: pytest.FixtureRequest, exported: tuple[Path, Any], server: ModelServerHandle
) -> Iterator[FlaskClient]:
    with backend_client(exported[0], server, request.param) as client:
        yield client


# Each text's units: (text, start, end, row position of the first sub-token), by hand.
UNITS = [
    [("Hello", 0, 5, 1), (",", 5, 6, 2), ("world", 8, 13, 3), ("!", 13, 14, 4),
     ("Paris", 17, 22, 5)],
    [("Mary", 0, 4, 1), ("went", 5, 9, 2), ("to", 10, 12, 3), ("Zürich", 13, 19, 4),
     ("日", 20, 21, 5), ("本", 21, 22, 6), (".", 22, 23, 7)],
    [("unbelievable", 0, 12, 1), ("cat", 13, 16, 4)],
    [("the", 0, 3, 1), ("cat", 4, 7, 2), ("went", 8, 12, 3), ("to", 13, 15, 4),
     ("paris", 16, 21, 5), (",", 22, 23, 6), ("the", 24, 27, 7), ("cat", 28, 31, 8),
     ("went", 32, 36, 9), ("to", 37, 39, 10)],
]  # fmt: skip
LEFT_UNITS = [  # aggregation "none": every token, a sub-token's span its own
    [("the", 0, 3, 1), ("cat", 4, 7, 2)],
    [("un", 0, 2, 1), ("believ", 2, 8, 2), ("able", 8, 12, 3), ("mary", 14, 18, 4)],
    [("hello", 0, 5, 1)],
    [("the", 0, 3, 1), ("cat", 4, 7, 2), ("went", 8, 12, 3), ("to", 13, 15, 4),
     ("paris", 16, 21, 5), (",", 22, 23, 6)],
]  # fmt: skip


def expected_words(rows: Any, units: list[tuple[str, int, int, int]], outside: str | None) -> Any:
    found = []
    for text, start, end, position in units:
        label = LABELS[int(np.argmax(rows[position]))]
        if label != outside:
            found.append((text, start, end, label, float(np.max(rows[position]))))
    return found


def check(answer: dict[str, Any], rows: Any, units: Any, outside: str | None) -> None:
    got = [(w["text"], w["start"], w["end"], w["label"], w["score"]) for w in answer["words"]]
    want = expected_words(rows, units, outside)
    assert [item[:4] for item in got] == [item[:4] for item in want]
    assert np.allclose([item[4] for item in got], [item[4] for item in want], rtol=1e-4)


def test_each_word_gets_the_label_keras_gives_its_first_sub_token(
    client: FlaskClient, exported: tuple[Path, dict[str, Any]]
) -> None:
    response = client.post(f"/v1/models/{NAME}:predict", json={"instances": INSTANCES})
    assert response.status_code == 200, response.get_json()
    keras = exported[1]
    for row, answer in enumerate(response.get_json()["predictions"]):
        entities, tokens = answer["entities"], answer["left_tokens"]
        check(entities, keras["tags"][row], UNITS[row], "O")
        check(tokens, keras["left_tags"][row], LEFT_UNITS[row], None)
        assert entities["truncated"] is (row == 3)
        assert tokens["truncated"] is (row == 3)
        for word in entities["words"] + entities["entities"]:
            assert TEXTS[row][word["start"] : word["end"]] == word["text"]
        for entity in entities["entities"]:
            assert entity["label"] in ("LOC", "PER")
    alone = client.post(f"/v1/models/{NAME}:predict", json={"inputs": INSTANCES[2]})
    assert alone.status_code == 200, alone.get_json()  # alone: narrower rows, same reading
    check(alone.get_json()["outputs"]["entities"], keras["tags"][2], UNITS[2], "O")
    check(alone.get_json()["outputs"]["left_tokens"], keras["left_tags"][2], LEFT_UNITS[2], None)


def test_the_openapi_document_describes_the_answer(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    assert "LabelledSpan" in schemas and "TokenLabelsAnswer" in schemas
    # Only an IOB2 head answers entities: the other's schema did list them (always null).
    assert "entities" not in schemas["TokenLabelsAnswer"]["properties"]
    assert "entities" in schemas["TokenEntitiesAnswer"]["required"]
    assert set(schemas["LabelledSpan"]["required"]) == {"text", "start", "end", "label", "score"}
