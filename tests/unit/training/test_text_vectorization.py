"""A Keras model that tokenises with TextVectorization, served through the tokenizer and id
model of ``training.text_vectorization``: the same ids, the same answers as on raw strings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tokenizers import Tokenizer

from serving.encoding import encode_instances
from serving.spec import CategoricalHead, RegressionHead, ServingSpec, TextInput
from training.export import SpecMismatchError, export_for_serving
from training.text_vectorization import ids_model, text_vectorization_tokenizer

CORPUS = ["Hello World, ÉCOLE école!", "foo\u00a0bar baz\tqux", "x-y don't 3.5", "the cat sat"]
# ASCII-only lowercasing, ASCII punctuation and whitespace: where a guessed tokenizer differs.
TEXTS = ["ÉCOLE École école", "foo\u00a0bar", "x-y\u2003don't", "a\vb\fc THE, cat", "İ Σ", ""]


def _model(standardize: str | None = "lower_and_strip_punctuation") -> tuple[Any, Any]:
    import keras

    keras.utils.set_random_seed(5)
    layer = keras.layers.TextVectorization(
        max_tokens=40, output_sequence_length=8, standardize=standardize
    )
    layer.adapt(CORPUS)
    text = keras.Input((1,), dtype="string", name="review")
    features = keras.layers.Flatten()(keras.layers.Embedding(40, 4)(layer(text)))
    outputs = {
        "topic": keras.layers.Dense(3, activation="softmax")(features),
        "stars": keras.layers.Dense(1)(features),
    }
    return keras.Model(text, outputs), layer


@pytest.mark.parametrize("standardize", [None, "lower", "lower_and_strip_punctuation"])
def test_the_tokenizer_gives_the_layers_ids(standardize: str | None) -> None:
    _, layer = _model(standardize)
    tokenizer = text_vectorization_tokenizer(layer)
    assert tokenizer.get_vocab_size() == layer.vocabulary_size()
    for text in TEXTS + CORPUS:
        expected = [int(token) for token in layer([text]).numpy()[0] if token]
        assert tokenizer.encode(text).ids == expected, text


def test_a_text_vectorization_model_is_served_as_keras_answers(tmp_path: Path) -> None:
    # The export refused the string input ("tokenise outside the model") and left the user to
    # guess a tokenizer: Keras lowercases ASCII only and keeps a no-break space in a word.
    model, layer = _model()
    spec = ServingSpec(
        title="reviews",
        inputs=[TextInput(field="review", tensor="review", max_tokens=8, vocab_size=40)],
        heads=[
            CategoricalHead(output="topic", field="topic", labels=["a", "b", "c"]),
            RegressionHead(output="stars", field="stars"),
        ],
        example={"review": "the cat sat"},
    )
    tokenizer = text_vectorization_tokenizer(layer)
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    files = {"tokenizer.json": tmp_path / "tokenizer.json"}
    with pytest.raises(SpecMismatchError, match=r"training\.text_vectorization"):
        export_for_serving(model, spec, files, name="r", repo=tmp_path)
    served = ids_model(model, layer, "review")
    version = export_for_serving(served, spec, files, name="r", repo=tmp_path)
    instances = [{"review": text} for text in TEXTS[:-1]]
    ids = encode_instances(spec, {"tokenizer.json": tokenizer}, instances)
    answers = tf.saved_model.load(str(version)).signatures["serving_default"](
        review=tf.constant(ids["review"])
    )
    expected = model(tf.constant([[item["review"]] for item in instances]))
    np.testing.assert_allclose(answers["topic"].numpy(), expected["topic"], rtol=1e-5)
    np.testing.assert_allclose(answers["stars"].numpy(), expected["stars"][:, 0], rtol=1e-5)


def test_a_layer_no_tokenizer_reproduces_is_refused_by_name() -> None:
    import keras

    layer = keras.layers.TextVectorization(ngrams=2)
    layer.adapt(CORPUS)
    with pytest.raises(ValueError, match=r"ngrams=2 has no tokenizer"):
        text_vectorization_tokenizer(layer)


def test_the_ids_model_of_a_sequential_model_keys_its_output_by_its_last_layer() -> None:
    import keras

    layer = keras.layers.TextVectorization(max_tokens=20)
    layer.adapt(CORPUS)
    model = keras.Sequential(
        [
            keras.Input((1,), dtype="string"),
            layer,
            keras.layers.Embedding(20, 4),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax", name="probs"),
        ]
    )
    served = ids_model(model, layer, "text_ids")
    texts = tf.constant([["the cat sat, hello"]])
    np.testing.assert_allclose(served({"text_ids": layer(texts)})["probs"], model(texts))


@pytest.mark.parametrize("shared", [True, False])
def test_a_model_of_two_text_inputs_is_served_as_keras_answers(
    tmp_path: Path, shared: bool
) -> None:
    # Found as a new user: a title + body model (one layer called on both, or a layer each)
    # had no way through: "text_vectorization is called 2 times; expected once".
    import keras

    keras.utils.set_random_seed(5)
    layers = [keras.layers.TextVectorization(max_tokens=40, output_sequence_length=8)]
    layers += [] if shared else [keras.layers.TextVectorization(max_tokens=40)]
    for layer in layers:
        layer.adapt(CORPUS)
    title = keras.Input((1,), dtype="string", name="title")
    body = keras.Input((1,), dtype="string", name="body")
    embedding, pool = (
        keras.layers.Embedding(40, 4, mask_zero=True),
        keras.layers.GlobalAveragePooling1D(),
    )
    features = keras.layers.Concatenate()(
        [pool(embedding(layers[0](title))), pool(embedding(layers[-1](body)))]
    )
    model = keras.Model(
        [title, body],
        {
            "topic": keras.layers.Dense(3, activation="softmax", name="topic")(features),
            "stars": keras.layers.Dense(1, name="stars")(features),
        },
    )
    names = {"title": "title_ids", "body": "body_ids"}
    with pytest.raises(ValueError, match=r"give tensor= as \{model input name"):
        ids_model(model, layers, "title_ids")
    with pytest.raises(
        ValueError, match=r"string inputs are \['body', 'title'\].*\['body'\] are not"
    ):
        ids_model(model, layers, {"title": "title_ids"})
    files = {}
    for index, layer in enumerate(layers):
        path = tmp_path / f"tokenizer{index}.json"
        text_vectorization_tokenizer(layer).save(str(path))
        files[path.name] = path
    spec = ServingSpec(
        title="articles",
        inputs=[
            TextInput(
                field=field,
                tensor=tensor,
                tokenizer=f"tokenizer{index if not shared else 0}.json",
                max_tokens=8,
                vocab_size=layers[index if not shared else 0].vocabulary_size(),
            )
            for index, (field, tensor) in enumerate(names.items())
        ],
        heads=[
            CategoricalHead(output="topic", field="topic", labels=["a", "b", "c"]),
            RegressionHead(output="stars", field="stars"),
        ],
        example={"title": "the cat", "body": "hello world"},
    )
    version = export_for_serving(
        ids_model(model, layers, names), spec, files, name="a", repo=tmp_path
    )
    instances = [
        {"title": "Hello cat", "body": "the cat sat, foo"},
        {"title": "x-y", "body": "baz"},
    ]
    tokenizers = {name: Tokenizer.from_file(str(path)) for name, path in files.items()}
    ids = encode_instances(spec, tokenizers, instances)
    answers = tf.saved_model.load(str(version)).signatures["serving_default"](
        **{name: tf.constant(value) for name, value in ids.items()}
    )
    expected = model(
        [tf.constant([[item[field]] for item in instances]) for field in ("title", "body")]
    )
    np.testing.assert_allclose(answers["topic"].numpy(), expected["topic"], rtol=1e-5)
    np.testing.assert_allclose(answers["stars"].numpy(), expected["stars"][:, 0], rtol=1e-5)
