"""A model the user has only as a SavedModel (``tf.saved_model.save``, ``model.export``) is
served through ``training.signature_model`` with the answers of the SavedModel itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from tokenizers import Tokenizer

from serving.encoding import encode_instances
from serving.spec import BinaryHead, CategoricalHead, RegressionHead, ServingSpec, TextInput
from training.export import SpecMismatchError, export_for_serving
from training.signature_model import signature_inputs, signature_model
from training.tokenization import train_tokenizer

TEXTS = ["cheap pills buy now", "great article about python", "win money fast click"]


def _two_inputs_three_heads() -> keras.Model:
    keras.utils.set_random_seed(3)
    title = keras.Input((None,), dtype="int32", name="title_ids")
    body = keras.Input((None,), dtype="int64", name="body_ids")
    embedding = keras.layers.Embedding(40, 8, mask_zero=True)
    pool = keras.layers.GlobalAveragePooling1D()
    features = keras.layers.Concatenate()([pool(embedding(title)), pool(embedding(body))])
    return keras.Model(
        [title, body],
        {
            "topic": keras.layers.Dense(3, activation="softmax", name="topic")(features),
            "is_spam": keras.layers.Dense(1, activation="sigmoid", name="is_spam")(features),
            "rating": keras.layers.Dense(1, name="rating")(features),
        },
    )


def _spec() -> ServingSpec:
    return ServingSpec(
        title="articles",
        inputs=[
            TextInput(field="title", tensor="title_ids", max_tokens=8, vocab_size=40),
            TextInput(field="body", tensor="body_ids", max_tokens=16, vocab_size=40),
        ],
        heads=[
            CategoricalHead(output="topic", field="topic", labels=["a", "b", "c"]),
            BinaryHead(output="is_spam", field="is_spam", labels=("ham", "spam")),
            RegressionHead(output="rating", field="rating"),
        ],
        example={"title": "cheap pills", "body": "win money fast"},
    )


@pytest.mark.parametrize("writer", ["tf.saved_model.save", "model.export", "export_for_serving"])
def test_a_saved_model_is_served_with_its_own_answers(tmp_path: Path, writer: str) -> None:
    # Found as a new user: the README's recipe, TFSMLayer(path, call_endpoint="serving_default")
    # called on the ids, failed with "takes 0 positional arguments, got 1" (a signature takes
    # keywords only), and tf.saved_model.save names the inputs inputs, inputs_1. A version
    # export_for_serving wrote (re-exported with another spec, say) failed with Keras's "Could
    # not automatically infer the output shape" (newuser9).
    model, saved = _two_inputs_three_heads(), tmp_path / "saved"
    tokenizer = tmp_path / "tokenizer.json"
    train_tokenizer(TEXTS, vocab_size=40).save(str(tokenizer))
    tensors: dict[str, str] | None = None  # model.export and export_for_serving keep names
    if writer == "model.export":
        model.export(str(saved))
    elif writer == "export_for_serving":
        saved = export_for_serving(
            model, _spec(), {"tokenizer.json": tokenizer}, name="a", repo=tmp_path / "first"
        )
    else:
        tf.saved_model.save(model, str(saved))
        assert signature_inputs(saved) == {
            "inputs": "int32 [None, None]",
            "inputs_1": "int64 [None, None]",
        }
        tensors = {"inputs": "title_ids", "inputs_1": "body_ids"}
    version = export_for_serving(
        signature_model(saved, tensors=tensors),
        _spec(),
        {"tokenizer.json": tokenizer},
        name="articles",
        repo=tmp_path / "repo",
    )
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    instances = [{"title": "cheap pills", "body": "great article about python"}]
    ids = encode_instances(
        _spec(), {"tokenizer.json": Tokenizer.from_file(str(tokenizer))}, instances
    )
    answers = served(**{name: tf.constant(value, tf.int32) for name, value in ids.items()})
    expected: Any = model([ids["title_ids"], ids["body_ids"]])
    for name in ("topic", "is_spam", "rating"):
        np.testing.assert_allclose(
            np.reshape(answers[name].numpy(), -1), np.reshape(expected[name], -1), rtol=1e-5
        )


def test_a_wrong_argument_name_lists_the_signatures_arguments(tmp_path: Path) -> None:
    tf.saved_model.save(_two_inputs_three_heads(), str(tmp_path / "saved"))
    with pytest.raises(ValueError, match=r"no arguments .*inputs: int32 \[None, None\]"):
        signature_model(tmp_path / "saved", tensors={"title_ids": "title_ids"})
    # Found by the adversarial pass breaknew6b: Keras's 'The name "title_ids" is used 2 times
    # in the model' did not say which tensors= entry gave it.
    for twice in ({"inputs": "title_ids", "inputs_1": "title_ids"}, {"inputs": "inputs_1"}):
        with pytest.raises(ValueError, match=r"tensors= gives \['.*'\] to two arguments"):
            signature_model(tmp_path / "saved", tensors=twice)
    with pytest.raises(ValueError, match=r"has no signature 'serve'; it has \['serving_default'\]"):
        signature_model(tmp_path / "saved", signature="serve")


def test_the_readme_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    tf.saved_model.save(_two_inputs_three_heads(), "saved")
    train_tokenizer(TEXTS, vocab_size=40).save("tokenizer.json")
    readme = (Path(__file__).resolve().parents[3] / "training" / "README.md").read_text()
    section = readme.split("A model you have only as a SavedModel", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match
    scope = {"Path": Path, "export_for_serving": export_for_serving, "spec": _spec()}
    exec(compile(match.group(1), "training/README.md", "exec"), scope)
    assert isinstance(scope["version"], Path)
    assert (tmp_path / scope["version"] / "saved_model.pb").is_file()
    printed = capsys.readouterr().out
    assert "{'inputs': 'int32 [None, None]', 'inputs_1': 'int64 [None, None]'}" in printed


def test_list_outputs_are_named_by_position_and_the_refusal_says_so(tmp_path: Path) -> None:
    # Found as a new user (newuser8): a model with list outputs (layers topic, is_spam,
    # rating) saved with model.export has outputs output_0..2; a spec naming the layers was
    # refused with "(outputs: ['output_1', 'output_0', 'output_2'])" alone: neither which is
    # which nor what to do.
    keras.utils.set_random_seed(3)
    dicts = _two_inputs_three_heads()
    layers = ("topic", "is_spam", "rating")
    listed = keras.Model(dicts.inputs, [dicts.get_layer(name).output for name in layers])
    listed.export(str(tmp_path / "saved"))
    model = signature_model(tmp_path / "saved")
    tokenizer = tmp_path / "tokenizer.json"
    train_tokenizer(TEXTS, vocab_size=40).save(str(tokenizer))
    files = {"tokenizer.json": tokenizer}
    with pytest.raises(
        SpecMismatchError,
        match=r"\['output_0', 'output_1', 'output_2'\]\); a "
        r"SavedModel of a model with list outputs .* in the order of the model's",
    ):
        export_for_serving(model, _spec(), files, name="articles", repo=tmp_path / "repo")
    heads = [
        head.model_copy(update={"output": f"output_{index}"})
        for index, head in enumerate(_spec().heads)
    ]
    spec = _spec().model_copy(update={"heads": heads})
    # The documented order holds: each output_N has the answers of model.outputs[N].
    version = export_for_serving(model, spec, files, name="articles", repo=tmp_path / "repo")
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    ids = {"title_ids": np.array([[3, 4, 0]]), "body_ids": np.array([[5, 6, 7]])}
    answers = served(**{name: tf.constant(value, tf.int32) for name, value in ids.items()})
    expected = listed([ids["title_ids"], ids["body_ids"]])
    for index, value in enumerate(expected):
        np.testing.assert_allclose(
            np.reshape(answers[f"output_{index}"].numpy(), -1), np.reshape(value, -1), rtol=1e-5
        )


def test_a_keras_file_is_named_as_such(tmp_path: Path) -> None:
    # Found by the new-user trial (newuser9): TensorFlow's "SavedModel file does not exist at:
    # m.keras/{saved_model.pbtxt|saved_model.pb}" for the most common other form of a model.
    (tmp_path / "m.keras").write_bytes(b"PK")
    for call in (signature_inputs, signature_model):
        with pytest.raises(ValueError, match=r"is a file, not a SavedModel folder: a \.keras"):
            call(tmp_path / "m.keras")


def test_dict_inputs_are_numbered_in_sorted_key_order(tmp_path: Path) -> None:
    # Found by the new-user trial (newuser11): a model built with dict inputs
    # {"title_ids": ..., "body_ids": ...}, saved with tf.saved_model.save, names body_ids
    # "inputs" (tf.nest flattens a dict by sorted key), and both are int32 [None, None]: the
    # README's list-input mapping, inputs -> title_ids, swapped them (silent with vocabularies
    # of one size). The README now says which order each form numbers.
    title = keras.Input((None,), dtype="int32", name="title_ids")
    body = keras.Input((None,), dtype="int32", name="body_ids")
    pool = keras.layers.GlobalAveragePooling1D()
    title_vector = pool(keras.layers.Embedding(40, 4, mask_zero=True)(title))
    body_vector = pool(keras.layers.Embedding(40, 4, mask_zero=True)(body) * 3.0)
    both = keras.layers.Concatenate()([title_vector, body_vector])
    rating = keras.layers.Dense(1, name="rating")(both)
    model = keras.Model({"title_ids": title, "body_ids": body}, {"rating": rating})
    tf.saved_model.save(model, str(tmp_path / "saved"))
    ids = {
        "title_ids": np.array([[1, 2, 0]], np.int32),
        "body_ids": np.array([[5, 6, 7]], np.int32),
    }
    expected = np.asarray(model(ids)["rating"])
    by_key = signature_model(
        tmp_path / "saved", tensors={"inputs": "body_ids", "inputs_1": "title_ids"}
    )
    np.testing.assert_allclose(np.asarray(by_key(ids)["rating"]), expected, rtol=1e-5)
    listed = signature_model(
        tmp_path / "saved", tensors={"inputs": "title_ids", "inputs_1": "body_ids"}
    )
    assert not np.allclose(np.asarray(listed(ids)["rating"]), expected)
