"""Tiny Keras models for tests: the three built-in shapes, and one for any serving spec."""

from __future__ import annotations

from collections.abc import Callable

import keras

from serving.spec import ServingSpec, TokenLabelsHead
from training.layers import MaskedMeanPooling
from training.spec_check import head_width

INCOME_GROUPS = 10
# Final activation of each head kind, so a model built for a spec answers in its ranges.
ACTIVATIONS = {
    "categorical": "softmax",
    "segment_weights": "softmax",
    "token_labels": "softmax",
    "multilabel": "sigmoid",
    "binary": "sigmoid",
    "score": "sigmoid",
    "regression": None,
}


def encoder(vocab: int, width: int = 8) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    """Embedding + masked mean pooling: ignores pad id 0, so padding changes nothing."""
    embedding = keras.layers.Embedding(vocab, width)
    pooling = MaskedMeanPooling()
    return lambda ids: pooling(embedding(ids), ids)


def qa_model(vocab: int, answers: int) -> keras.Model:
    """article_ids, question_ids -> answer_probs ``[batch, answers]``."""
    article = keras.Input((None,), dtype="int32", name="article_ids")
    question = keras.Input((None,), dtype="int32", name="question_ids")
    merged = keras.layers.Concatenate()([encoder(vocab)(article), encoder(vocab)(question)])
    probs = keras.layers.Dense(answers, activation="softmax", name="answer_probs")(merged)
    return keras.Model({"article_ids": article, "question_ids": question}, {"answer_probs": probs})


def profile_model(vocab: int) -> keras.Model:
    """post_ids -> age ``[batch, 1]``, income_probs ``[batch, 10]``, gender_prob ``[batch, 1]``."""
    posts = keras.Input((None,), dtype="int32", name="post_ids")
    features = encoder(vocab)(posts)
    outputs = {
        "age": keras.layers.Dense(1, name="age")(features),
        "income_probs": keras.layers.Dense(
            INCOME_GROUPS, activation="softmax", name="income_probs"
        )(features),
        "gender_prob": keras.layers.Dense(1, activation="sigmoid", name="gender_prob")(features),
    }
    return keras.Model({"post_ids": posts}, outputs)


def similarity_model(vocab: int) -> keras.Model:
    """left_ids, right_ids -> score ``[batch, 1]``, symmetric (one shared encoder)."""
    left = keras.Input((None,), dtype="int32", name="left_ids")
    right = keras.Input((None,), dtype="int32", name="right_ids")
    encode = encoder(vocab)
    a, b = encode(left), encode(right)
    merged = keras.layers.Concatenate()([keras.ops.abs(a - b), keras.layers.Multiply()([a, b])])
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(merged)
    return keras.Model({"left_ids": left, "right_ids": right}, {"score": score})


def spec_model(spec: ServingSpec, seed: int = 7) -> keras.Model:
    """An untrained model with exactly the spec's inputs and head outputs (any spec).

    Each input gets its own encoder with ``vocab_size`` rows; the pooled features of all
    inputs feed one Dense per head with the head's width and kind's activation (a token head:
    a Dense softmax over its input's token embeddings, one distribution per token).
    """
    keras.utils.set_random_seed(seed)
    inputs = {
        item.tensor: keras.Input((None,), dtype="int32", name=item.tensor) for item in spec.inputs
    }
    pooled = [encoder(item.vocab_size)(inputs[item.tensor]) for item in spec.inputs]
    features = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate()(pooled)
    outputs = {
        head.output: keras.layers.Dense(
            head_width(head), activation=ACTIVATIONS[head.kind], name=head.output
        )(
            keras.layers.Embedding(spec.input(head.input_field).vocab_size, 8)(
                inputs[spec.input(head.input_field).tensor]
            )
            if isinstance(head, TokenLabelsHead)
            else features
        )
        for head in spec.heads
    }
    return keras.Model(inputs, outputs)
