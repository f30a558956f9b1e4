"""A head that reads probabilities over a layer left linear (a model trained with
``from_logits=True``) is refused from the model's graph, not only when the example's values
fall outside [0, 1]."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import keras
import pytest
import tensorflow as tf
from tokenizers import Tokenizer

from serving.spec import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    RegressionHead,
    ServingSpec,
    TextInput,
    TokenLabelsHead,
)
from serving.tokenization import load_tokenizer
from training.export import SpecMismatchError, export_for_serving
from training.spec_check import check_model


def _spec(vocab: int, head: HeadSpec) -> ServingSpec:
    text = TextInput(field="text", tensor="text_ids", max_tokens=16, vocab_size=vocab)
    return ServingSpec(
        title="t", inputs=[text], heads=[head], example={"text": "the cat sat on the mat."}
    )


def _model(vocab: int, last: Any, pool: bool = True) -> keras.Model:
    ids = keras.Input((None,), dtype="int32", name="text_ids")
    hidden = keras.layers.Embedding(vocab, 4, mask_zero=True)(ids)
    if pool:
        hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    return keras.Model({"text_ids": ids}, {"out": last(hidden)})


def test_logits_within_0_and_1_for_the_example_are_refused(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    # Found by newuser7: a binary head over Dense(1) without sigmoid whose logit for the
    # example was ~0.3 passed the example check, was exported and answered the logit as
    # "probability" (and label "ham" for every logit below 0.5, i.e. probabilities below 0.62).
    bias = keras.initializers.Constant(0.3)
    model = _model(vocab, keras.layers.Dense(1, name="spam", bias_initializer=bias))
    head = BinaryHead(output="out", field="spam", labels=("ham", "spam"))
    with pytest.raises(
        SpecMismatchError,
        match=r"head spam \(binary\): output out is made by layer 'spam' \(Dense\) without an "
        r"activation: logits.*end the model with a sigmoid",
    ):
        export_for_serving(
            model, _spec(vocab, head), {"tokenizer.json": tokenizer_path}, name="l", repo=tmp_path
        )
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize(
    ("last", "head", "pool", "layer"),
    [
        (
            keras.layers.Dense(2, bias_initializer=keras.initializers.Constant(0.3), name="d"),
            MultilabelHead(output="out", field="tags", labels=["a", "b"]),
            True,
            "'d' (Dense)",
        ),
        (
            keras.layers.TimeDistributed(keras.layers.Dense(3), name="td"),
            TokenLabelsHead(
                output="out", field="words", input_field="text", labels=["O", "B-X", "I-X"]
            ),
            False,
            "'td' (TimeDistributed)",
        ),
        (
            lambda hidden: keras.ops.squeeze(keras.layers.Dense(1, name="one")(hidden), -1),
            BinaryHead(output="out", field="spam", labels=("ham", "spam")),
            True,
            "'one' (Dense)",
        ),
        (
            lambda hidden: keras.layers.Reshape(())(keras.layers.Dense(1, name="one")(hidden)),
            BinaryHead(output="out", field="spam", labels=("ham", "spam")),
            True,
            "'one' (Dense)",
        ),
        (  # the README's wrapping of a Sequential fitted without a keras.Input
            lambda hidden: keras.Sequential([keras.layers.Dense(1, name="seq_out")])(hidden),
            BinaryHead(output="out", field="spam", labels=("ham", "spam")),
            True,
            "'seq_out' (Dense)",
        ),
    ],
)
def test_every_probability_head_over_a_linear_layer_is_refused(
    tokenizer_path: Path, vocab: int, last: Any, head: HeadSpec, pool: bool, layer: str
) -> None:
    tokenizers: dict[str, Tokenizer] = {"tokenizer.json": load_tokenizer(tokenizer_path)}
    with pytest.raises(
        SpecMismatchError, match=re.escape(f"is made by layer {layer} without an activation")
    ):
        check_model(_model(vocab, last, pool), _spec(vocab, head), tokenizers)


def test_a_regression_head_over_a_linear_layer_and_a_softmax_are_accepted(
    tokenizer_path: Path, vocab: int
) -> None:
    tokenizers: dict[str, Tokenizer] = {"tokenizer.json": load_tokenizer(tokenizer_path)}
    regression = RegressionHead(output="out", field="stars")
    check_model(_model(vocab, keras.layers.Dense(1)), _spec(vocab, regression), tokenizers)
    binary = BinaryHead(output="out", field="spam", labels=("ham", "spam"))
    last = keras.layers.Dense(1, activation="sigmoid")
    check_model(_model(vocab, last), _spec(vocab, binary), tokenizers)
    squeezed = keras.layers.Dense(1, activation="sigmoid")
    model = _model(vocab, lambda hidden: keras.ops.squeeze(squeezed(hidden), -1))
    check_model(model, _spec(vocab, binary), tokenizers)


@pytest.mark.parametrize(
    ("last", "head", "found"),
    [
        (
            keras.layers.Dense(3, activation="softmax", name="tags"),
            MultilabelHead(output="out", field="tags", labels=["a", "b", "c"]),
            "layer 'tags' (Dense) with a softmax, whose values sum to 1",
        ),
        (
            lambda hidden: keras.layers.Softmax(name="sm")(keras.layers.Dense(2)(hidden)),
            MultilabelHead(output="out", field="tags", labels=["a", "b"]),
            "layer 'sm' (Softmax) with a softmax",
        ),
        (
            lambda hidden: keras.ops.sparsemax(keras.layers.Dense(2)(hidden)),
            MultilabelHead(output="out", field="tags", labels=["a", "b"]),
            "with a sparsemax",
        ),
        (  # TensorFlow's own softmax as the activation (its name is softmax_v2)
            keras.layers.Dense(2, activation=tf.nn.softmax, name="tf"),
            MultilabelHead(output="out", field="tags", labels=["a", "b"]),
            "layer 'tf' (Dense) with a softmax_v2",
        ),
        (
            keras.layers.Dense(1, activation="softmax", name="one"),
            BinaryHead(output="out", field="spam", labels=("ham", "spam")),
            "one unit's is always 1",
        ),
        (
            lambda hidden: keras.layers.Activation("sigmoid", name="act")(
                keras.layers.Dense(3)(hidden)
            ),
            CategoricalHead(output="out", field="topic", labels=["a", "b", "c"]),
            "layer 'act' (Activation) with a sigmoid, independent probabilities",
        ),
    ],
)
def test_a_head_over_the_other_kind_of_probabilities_is_refused(
    tokenizer_path: Path, vocab: int, last: Any, head: HeadSpec, found: str
) -> None:
    # A softmax under a multilabel head was exported: its labels' probabilities sum to 1, so
    # two labels that both apply cannot both pass 0.5 (a one-unit softmax is always 1.0). A
    # sigmoid under a categorical head was refused only when the example's row happened not
    # to sum to 1.
    tokenizers: dict[str, Tokenizer] = {"tokenizer.json": load_tokenizer(tokenizer_path)}
    with pytest.raises(SpecMismatchError, match=re.escape(found)):
        check_model(_model(vocab, last), _spec(vocab, head), tokenizers)
