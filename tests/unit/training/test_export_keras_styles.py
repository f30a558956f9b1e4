"""export_for_serving with models written the ways Keras allows besides the functional API
(subclassed models) and trained the ways Keras recommends (mixed precision): served as Keras
predicts, or refused with the cause and its remedy."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from serving.encoding import encode_instances
from serving.spec import BinaryHead, CategoricalHead, RegressionHead, ServingSpec, TextInput
from serving.tokenization import load_tokenizer
from training.export import SpecMismatchError, export_for_serving
from training.layers import MaskedMeanPooling


def _spec(vocab: int, *heads: Any) -> ServingSpec:
    return ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab)],
        heads=list(heads),
        example={"text": "the cat sat on the mat."},
    )


TOPIC = CategoricalHead(output="topic", field="topic", labels=["a", "b", "c"])
SPAM = BinaryHead(output="spam", field="spam", labels=("ham", "spam"))


def _subclassed(vocab: int, returns: str, dropout: bool = False) -> Any:
    """A subclassed model: ``call`` takes a dict keyed ``text_ids`` and returns a dict
    (``returns="dict"``), or takes the ids tensor and returns one tensor (``"tensor"``) or a
    list (``"list"``); with ``dropout``, Monte Carlo dropout (``training=True``)."""
    import keras

    class Classifier(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.embedding = keras.layers.Embedding(vocab, 4)
            self.pooling = MaskedMeanPooling()
            self.topic = keras.layers.Dense(3, activation="softmax")
            # Only layers call() uses: Keras warns of "unbuilt state" for an unused one.
            if returns != "tensor":
                self.spam = keras.layers.Dense(1, activation="sigmoid")
            if dropout:
                self.dropout = keras.layers.Dropout(0.5)

        def call(self, inputs: Any) -> Any:
            ids = inputs["text_ids"] if returns == "dict" else inputs
            features = self.pooling(self.embedding(ids), ids)
            if dropout:
                features = self.dropout(features, training=True)
            if returns == "dict":
                return {"topic": self.topic(features), "spam": self.spam(features)}
            if returns == "list":
                return [self.topic(features), self.spam(features)]
            return self.topic(features)

    keras.utils.set_random_seed(5)
    model = Classifier()
    ids = np.array([[3, 4, 0]], np.int32)
    model({"text_ids": ids} if returns == "dict" else ids)  # built, as fit builds it
    return model


def _served(version: Path, spec: ServingSpec, tokenizer_path: Path) -> tuple[Any, Any]:
    ids = encode_instances(
        spec, {"tokenizer.json": load_tokenizer(tokenizer_path)}, [spec.example] * 2
    )
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    return ids["text_ids"], signature(text_ids=tf.constant(ids["text_ids"]))


def test_a_subclassed_model_is_served(tmp_path: Path, tokenizer_path: Path, vocab: int) -> None:
    # A subclassed model has no symbolic inputs: the export stopped with a raw AttributeError
    # "The layer classifier has never been called and thus has no defined input".
    tokenizers = {"tokenizer.json": tokenizer_path}
    spec = _spec(vocab, TOPIC, SPAM)
    model = _subclassed(vocab, "dict")
    version = export_for_serving(model, spec, tokenizers, name="dict", repo=tmp_path)
    ids, served = _served(version, spec, tokenizer_path)
    expected = model.predict({"text_ids": ids}, verbose=0)
    np.testing.assert_allclose(served["topic"].numpy(), expected["topic"], rtol=1e-5)
    np.testing.assert_allclose(served["spam"].numpy(), expected["spam"][:, 0], rtol=1e-5)

    one = _spec(vocab, TOPIC)  # call(ids) -> tensor: the only head's output
    model = _subclassed(vocab, "tensor")
    version = export_for_serving(model, one, tokenizers, name="tensor", repo=tmp_path)
    ids, served = _served(version, one, tokenizer_path)
    np.testing.assert_allclose(served["topic"].numpy(), model.predict(ids, verbose=0), rtol=1e-5)

    with pytest.raises(SpecMismatchError, match=r"returns unnamed outputs: return a dict keyed"):
        export_for_serving(_subclassed(vocab, "list"), spec, tokenizers, name="l", repo=tmp_path)
    with pytest.raises(SpecMismatchError, match=r"cannot be called on the spec's inputs"):
        # Its call reads inputs["text_ids"]: with two inputs, no tensor alone is tried.
        two = spec.model_copy(
            update={
                "inputs": [
                    *spec.inputs,
                    spec.inputs[0].model_copy(update={"field": "b", "tensor": "b_ids"}),
                ],
                "example": {**spec.example, "b": "the cat"},
            }
        )
        export_for_serving(_subclassed(vocab, "tensor"), two, tokenizers, name="t", repo=tmp_path)


def test_a_float16_head_past_its_range_is_refused_with_the_remedy(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # mixed_float16 without a float32 last layer: a regression head of 70000 is inf in float16;
    # the export said only "is not finite for the example".
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    price = keras.layers.Dense(
        1, dtype="mixed_float16", bias_initializer=keras.initializers.Constant(70000.0)
    )(features)
    model = keras.Model(ids, {"price": price})
    spec = _spec(vocab, RegressionHead(output="price", field="price"))
    with pytest.raises(
        SpecMismatchError, match=r"float16 \(mixed precision\).*make the head float32"
    ):
        export_for_serving(model, spec, {"tokenizer.json": tokenizer_path}, name="p", repo=tmp_path)


def test_a_model_random_at_inference_is_refused_for_its_randomness(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Monte Carlo dropout masks its padding, yet the export said "output 'topic' changes when
    # the inputs are padded further ...: the model must mask its padding".
    model = _subclassed(vocab, "tensor", dropout=True)
    with pytest.raises(SpecMismatchError, match="changes between two calls on the same ids"):
        export_for_serving(
            model, _spec(vocab, TOPIC), {"tokenizer.json": tokenizer_path}, name="m", repo=tmp_path
        )


def test_a_binary_head_on_a_two_unit_softmax_is_named_a_categorical_one(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Said only "a scalar head needs [batch] or [batch, 1]".
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    model = keras.Model(ids, {"spam": keras.layers.Dense(2, activation="softmax")(features)})
    with pytest.raises(SpecMismatchError, match=r"2-unit softmax is a categorical head"):
        export_for_serving(
            model, _spec(vocab, SPAM), {"tokenizer.json": tokenizer_path}, name="b", repo=tmp_path
        )


def test_a_categorical_head_on_one_sigmoid_unit_is_named_a_binary_one(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found by newuser7: said only "the spec needs [batch, 2]".
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    model = keras.Model(ids, {"spam": keras.layers.Dense(1, activation="sigmoid")(features)})
    head = CategoricalHead(output="spam", field="spam", labels=["ham", "spam"])
    with pytest.raises(
        SpecMismatchError, match=r"one sigmoid unit is a binary head: BinaryHead\(labels=\('ham'"
    ):
        export_for_serving(
            model, _spec(vocab, head), {"tokenizer.json": tokenizer_path}, name="b", repo=tmp_path
        )


def test_an_output_no_spec_can_name_gets_the_way_to_rename_it(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # A dict output keyed "spam-prob": the spec's names are identifiers, so no spec could name
    # it; the export listed the outputs and stopped there.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    model = keras.Model(ids, {"spam-prob": keras.layers.Dense(1, activation="sigmoid")(features)})
    with pytest.raises(SpecMismatchError, match=r"\['spam-prob'\] cannot be spec names"):
        export_for_serving(
            model, _spec(vocab, SPAM), {"tokenizer.json": tokenizer_path}, name="o", repo=tmp_path
        )


def test_a_regression_head_on_several_units_is_told_to_split_them(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Dense(3) under one RegressionHead: the export said only "a scalar head needs [batch] or
    # [batch, 1]"; the slicing it now names exports (one head per value).
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    size = keras.layers.Dense(3)(features)
    head = RegressionHead(output="size", field="size", unit="cm")
    tokenizers = {"tokenizer.json": tokenizer_path}
    with pytest.raises(SpecMismatchError, match=r"give each of the 3 values its own output"):
        export_for_serving(
            keras.Model(ids, {"size": size}),
            _spec(vocab, head),
            tokenizers,
            name="r",
            repo=tmp_path,
        )
    split = keras.Model(ids, {f"size_{index}": size[:, index] for index in range(3)})
    spec = _spec(
        vocab,
        *(head.model_copy(update={"output": f"size_{i}", "field": f"size_{i}"}) for i in range(3)),
    )
    export_for_serving(split, spec, tokenizers, name="r", repo=tmp_path)


@pytest.mark.parametrize("form", ["tensor", "list"])
def test_a_model_built_on_a_bare_or_listed_input_exports_without_keras_warnings(
    form: str, tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # The export called every model on a dict: Keras warned "The structure of `inputs`
    # doesn't match the expected structure" for keras.Model(ids, ...), the commonest form.
    import keras

    ids = keras.Input((None,), dtype="int32", name="text_ids")
    features = MaskedMeanPooling()(keras.layers.Embedding(vocab, 4)(ids), ids)
    price = keras.layers.Dense(1)(features)
    model = keras.Model(ids if form == "tensor" else [ids], {"price": price})
    spec = _spec(vocab, RegressionHead(output="price", field="price"))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*structure of `inputs`")
        export_for_serving(model, spec, {"tokenizer.json": tokenizer_path}, name="p", repo=tmp_path)


def test_a_sequential_model_fitted_without_an_input_is_told_how_to_name_it(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found as a new user: a Sequential model fitted without a keras.Input has an input Keras
    # named keras_tensor, and the refusal said only that ['keras_tensor'] were not in the spec.
    import keras

    model = keras.Sequential(
        [
            keras.layers.Embedding(vocab, 4, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            _dense("topic"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 6), "int32"), np.zeros(4, "int32"), verbose=0)
    spec, files = _spec(vocab, TOPIC), {"tokenizer.json": tokenizer_path}
    with pytest.raises(SpecMismatchError, match=r"is a name Keras made up") as refused:
        export_for_serving(model, spec, files, name="m", repo=tmp_path)
    assert "keras.Input((None,), dtype='int32', name='text_ids')" in str(refused.value)
    ids = keras.Input((None,), dtype="int32", name="text_ids")  # the wrap the message gives
    wrapped = keras.Model({"text_ids": ids}, {"topic": model(ids)})
    assert export_for_serving(wrapped, spec, files, name="m", repo=tmp_path).name == "1"


def _dense(name: str) -> Any:
    import keras

    return keras.layers.Dense(3, activation="softmax", name=name)
