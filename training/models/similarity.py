"""Siamese Keras models for ``similarity``: one shared encoder, a symmetric score in [0, 1]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from training.layers import MaskedMeanPooling
from training.minilm import freeze_lower_layers, load_pretrained_encoder
from training.models.similarity_optim import similarity_optimizer

ARCHITECTURES = ("minilm", "classic")
# With ``cosent_weight`` > 0 the MiniLM model also outputs the raw cosine under this name,
# for training only: CoSENT ranks on it, the served signature has the spec's ``score`` only.
COSINE_OUTPUT = "cosine"
# CoSENT's scale on cosine differences (Su 2022's value).
COSENT_SCALE = 20.0


@keras.saving.register_keras_serializable(package="similarity")
class CosineScore(keras.layers.Layer):  # type: ignore[misc]
    """``sigmoid(scale * cosine(a, b) + shift)``: symmetric in a and b, always in [0, 1]."""

    def __init__(self, scale: float = 6.0, shift: float = -3.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_scale = scale
        self.initial_shift = shift

    def build(self, input_shape: Any) -> None:
        """Two trainable scalars that map cosine to the score range."""
        self.scale = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_scale), name="scale"
        )
        self.shift = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(self.initial_shift), name="shift"
        )

    def call(self, left: Any, right: Any) -> Any:
        """Scores ``[batch, 1]`` from two ``[batch, width]`` sentence vectors."""
        left = keras.ops.normalize(left, axis=-1)
        right = keras.ops.normalize(right, axis=-1)
        cosine = keras.ops.sum(left * right, axis=-1, keepdims=True)
        return keras.ops.sigmoid(self.scale * cosine + self.shift)

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "scale": self.initial_scale, "shift": self.initial_shift}


@keras.saving.register_keras_serializable(package="similarity")
class PairCosine(keras.layers.Layer):  # type: ignore[misc]
    """Cosine of two ``[batch, width]`` vectors as ``[batch, 1]`` (no weights)."""

    def call(self, left: Any, right: Any) -> Any:
        """``sum(normalize(left) * normalize(right))`` per row."""
        left = keras.ops.normalize(left, axis=-1)
        right = keras.ops.normalize(right, axis=-1)
        return keras.ops.sum(left * right, axis=-1, keepdims=True)


def classic_encoder(hparams: Mapping[str, Any], vocab_size: int) -> keras.Model:
    """Embedding + two Conv1D layers + masked mean pooling, trained from scratch.

    A CNN rather than a BiLSTM: on 2 CPU cores it trains and exports several times faster.
    """
    ids = keras.Input((None,), dtype="int32", name="ids")
    hidden = keras.layers.Embedding(vocab_size, int(hparams["embedding_dim"]))(ids)
    for index in range(2):
        hidden = keras.layers.Conv1D(
            int(hparams["conv_filters"]), 3, padding="same", activation="relu", name=f"conv_{index}"
        )(hidden)
    pooled = MaskedMeanPooling(name="mean_pooling")(hidden, ids)
    return keras.Model(ids, pooled, name="classic_encoder")


def minilm_encoder(hparams: Mapping[str, Any]) -> keras.Model:
    """The pretrained all-MiniLM-L6-v2 encoder with its lower layers optionally frozen."""
    encoder = load_pretrained_encoder(dropout=float(hparams["dropout"]))
    freeze_lower_layers(encoder, int(hparams["trainable_layers"]))
    return encoder


def build_similarity_model(
    hparams: Mapping[str, Any], vocab_size: int, encoder: keras.Model | None = None
) -> keras.Model:
    """The uncompiled siamese model; ``hparams["arch"]`` picks the encoder and the merge.

    ``encoder`` replaces the pretrained MiniLM (tests pass a small random one).
    """
    left = keras.Input((None,), dtype="int32", name="left_ids")
    right = keras.Input((None,), dtype="int32", name="right_ids")
    arch = hparams["arch"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown similarity arch {arch!r}; choose from {ARCHITECTURES}")
    if encoder is None:
        encoder = (
            minilm_encoder(hparams) if arch == "minilm" else classic_encoder(hparams, vocab_size)
        )
    # ONE encoder instance for both sides: shared weights make the score symmetric.
    left_vector, right_vector = encoder(left), encoder(right)
    outputs = {}
    if arch == "minilm":
        score = CosineScore(name="score")(left_vector, right_vector)
        if float(hparams.get("cosent_weight", 0.0)):
            # CoSENT ranks the raw cosine, so it cannot lower its loss by sharpening the
            # score's sigmoid (which MSE alone calibrates): on the score it did (MAE 0.38).
            outputs[COSINE_OUTPUT] = PairCosine(name=COSINE_OUTPUT)(left_vector, right_vector)
    else:
        merged = keras.layers.Concatenate()(
            [
                keras.ops.abs(left_vector - right_vector),
                keras.layers.Multiply()([left_vector, right_vector]),
            ]
        )
        hidden = keras.layers.Dense(int(hparams["hidden_units"]), activation="relu")(merged)
        hidden = keras.layers.Dropout(float(hparams["dropout"]))(hidden)
        score = keras.layers.Dense(1, activation="sigmoid", name="score")(hidden)
    return keras.Model(
        {"left_ids": left, "right_ids": right},
        {"score": score, **outputs},
        name=f"similarity_{arch}",
    )


def learning_rate(hparams: Mapping[str, Any], train_steps: int | None = None) -> Any:
    """The constant ``learning_rate``, or with ``lr_decay`` and ``train_steps`` (all epochs'
    batches) a linear warmup over ``warmup_fraction`` of the steps to it, then cosine decay
    to 0 (the warmup-then-decay recipe of BERT / SBERT fine-tuning)."""
    peak = float(hparams["learning_rate"])
    if not hparams.get("lr_decay") or not train_steps:
        return peak
    warmup = int(train_steps * float(hparams.get("warmup_fraction", 0.1)))
    return keras.optimizers.schedules.CosineDecay(
        0.0, max(1, train_steps - warmup), warmup_target=peak, warmup_steps=warmup
    )


def cosent(y_true: Any, y_pred: Any, scale: float = COSENT_SCALE) -> Any:
    """CoSENT ranking loss over every pair of a batch (Su 2022, "CoSENT").

    ``log(1 + sum over (i, j) with y_true[i] > y_true[j] of exp(scale * (y_pred[j] -
    y_pred[i])))``: a pair ordered like the gold scores costs little, a reversed one a lot;
    gold ties add nothing and shifting every prediction by a constant changes nothing, so
    only the order of the predictions counts, which is what Spearman scores. ``y_true`` and
    ``y_pred`` are ``[batch]`` or ``[batch, 1]`` floats; the result is a scalar.
    """
    gold = keras.ops.reshape(keras.ops.cast(y_true, y_pred.dtype), (-1,))
    predicted = keras.ops.reshape(y_pred, (-1,))
    # differences[i, j] = scale * (predicted[j] - predicted[i]), kept where gold[i] > gold[j].
    differences = scale * (predicted[None, :] - predicted[:, None])
    ordered = keras.ops.greater(gold[:, None], gold[None, :])
    # -1e4 stands for -inf: exp underflows to exactly 0 in float32 without NaN gradients.
    masked = keras.ops.where(ordered, differences, keras.ops.full_like(differences, -1e4))
    terms = keras.ops.concatenate([keras.ops.zeros((1,), y_pred.dtype), keras.ops.ravel(masked)])
    return keras.ops.logsumexp(terms)


@keras.saving.register_keras_serializable(package="similarity")
class CoSENT(keras.losses.Loss):  # type: ignore[misc]
    """:func:`cosent` as a Keras loss: one scalar per batch (sample weights are not used)."""

    def __init__(self, scale: float = COSENT_SCALE, name: str = "cosent", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.scale = scale

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """The batch's CoSENT loss over all its pairs of pairs."""
        return cosent(y_true, y_pred, self.scale)

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "scale": self.scale}


def compile_similarity_model(
    model: keras.Model, hparams: Mapping[str, Any], train_steps: int | None = None
) -> keras.Model:
    """Mean squared error against STS score / 5, plus ``cosent_weight`` x :class:`CoSENT` on
    the ``cosine`` output if the model has it; Adam with gradient clipping, per-layer
    learning-rate factors and the optional weight EMA (``training.models.similarity_optim``).

    ``train_steps`` (batches per epoch x epochs) enables the ``lr_decay`` schedule and times
    the EMA's copies into the model (each epoch's end).
    """
    losses: dict[str, Any] = {"score": "mse"}
    loss_weights = {"score": 1.0}
    if COSINE_OUTPUT in model.output_names:
        losses[COSINE_OUTPUT] = CoSENT(float(hparams.get("cosent_scale", COSENT_SCALE)))
        loss_weights[COSINE_OUTPUT] = float(hparams["cosent_weight"])
    model.compile(
        optimizer=similarity_optimizer(
            hparams,
            learning_rate(hparams, train_steps),
            train_steps // int(hparams["epochs"]) if train_steps else None,
        ),
        loss=losses,
        loss_weights=loss_weights,
        metrics={"score": [keras.metrics.MeanAbsoluteError(name="mae")]},
    )
    return model
