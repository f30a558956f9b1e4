"""The siamese Keras model for ``nli``: one shared sentence encoder, two heads.

Premise and hypothesis ids go through ONE encoder (mean-pooled MiniLM by default) to vectors
``u`` and ``v``. The entailment head is a softmax over ``[u, v, |u - v|, u * v]`` (InferSent,
Conneau et al. 2017; Sentence-BERT, Reimers & Gurevych 2019): the order of ``u`` and ``v``
in that vector keeps premise and hypothesis apart, since entailment is not symmetric (a
premise may entail its hypothesis but not the reverse). Relatedness is symmetric by
definition, so its head sees only the order-free ``|u - v|`` and ``u * v``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras

from training import minilm

ENTAILMENT_OUTPUT = "entailment_probs"
RELATEDNESS_OUTPUT = "relatedness"
INPUTS = ("premise_ids", "hypothesis_ids")
OUTPUTS = (ENTAILMENT_OUTPUT, RELATEDNESS_OUTPUT)
RELATEDNESS_LOW, RELATEDNESS_HIGH = 1.0, 5.0


def pretrained_encoder(hparams: Mapping[str, Any]) -> keras.Model:
    """all-MiniLM-L6-v2 with all but the top ``trainable_layers`` blocks frozen."""
    encoder = minilm.load_pretrained_encoder(dropout=float(hparams["dropout"]))
    minilm.freeze_lower_layers(encoder, int(hparams["trainable_layers"]))
    return encoder


def random_encoder(hparams: Mapping[str, Any]) -> keras.Model:
    """A small randomly initialised MiniLM-shaped encoder over the same vocabulary (tiny)."""
    width = int(hparams["hidden_size"])
    config = minilm.MiniLMConfig(
        hidden_size=width,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * width,
        max_position_embeddings=max(int(hparams["max_length"]), 8),
        dropout=float(hparams["dropout"]),
    )
    return minilm.build_encoder(config)


def build_heads(hparams: Mapping[str, Any], width: int) -> keras.Model:
    """The two heads over sentence vectors: ``u``, ``v`` float32 ``[batch, width]`` each.

    Outputs ``entailment_probs`` ``[batch, 3]`` (softmax in the order of
    ``training.data.sick.LABELS``) and ``relatedness`` ``[batch, 1]`` in [1, 5]
    (``1 + 4 * sigmoid``). A model of its own so that it can also be fitted on cached
    sentence vectors (see ``training.tasks.nli``).
    """
    u = keras.Input((width,), name="premise_vector")
    v = keras.Input((width,), name="hypothesis_vector")
    difference = keras.ops.abs(u - v)
    product = keras.layers.Multiply(name="product")([u, v])
    dropout = float(hparams["head_dropout"])
    directed = keras.layers.Concatenate(name="pair_features")([u, v, difference, product])
    directed = keras.layers.Dropout(dropout)(directed)
    hidden_units = int(hparams.get("hidden_units", 0))
    if hidden_units:
        directed = keras.layers.Dense(hidden_units, activation="relu", name="entailment_hidden")(
            directed
        )
        directed = keras.layers.Dropout(dropout)(directed)
    entailment = keras.layers.Dense(3, activation="softmax", name=ENTAILMENT_OUTPUT)(directed)
    symmetric = keras.layers.Concatenate(name="symmetric_features")([difference, product])
    symmetric = keras.layers.Dropout(dropout)(symmetric)
    unit = keras.layers.Dense(1, activation="sigmoid", name="relatedness_unit")(symmetric)
    relatedness = keras.layers.Rescaling(
        RELATEDNESS_HIGH - RELATEDNESS_LOW, offset=RELATEDNESS_LOW, name=RELATEDNESS_OUTPUT
    )(unit)
    return keras.Model(
        [u, v], {ENTAILMENT_OUTPUT: entailment, RELATEDNESS_OUTPUT: relatedness}, name="heads"
    )


def build_nli_model(
    hparams: Mapping[str, Any], encoder: keras.Model | None = None
) -> tuple[keras.Model, keras.Model, keras.Model]:
    """The uncompiled model, its encoder and its heads (layers shared, not copied).

    Model: int32 ids ``premise_ids``, ``hypothesis_ids`` ``[batch, length]`` -> the outputs
    of :func:`build_heads`. ``hparams["arch"]`` is ``minilm`` (pretrained) or ``random``;
    ``encoder`` replaces either (tests pass a small one).
    """
    arch = hparams["arch"]
    if encoder is None:
        if arch not in ("minilm", "random"):
            raise ValueError(f"unknown nli arch {arch!r}; choose from minilm, random")
        encoder = pretrained_encoder(hparams) if arch == "minilm" else random_encoder(hparams)
    premise = keras.Input((None,), dtype="int32", name=INPUTS[0])
    hypothesis = keras.Input((None,), dtype="int32", name=INPUTS[1])
    heads = build_heads(hparams, int(encoder.output.shape[-1]))
    # One encoder instance called twice: both sentences live in the same vector space.
    outputs = heads([encoder(premise), encoder(hypothesis)])
    model = keras.Model(
        {INPUTS[0]: premise, INPUTS[1]: hypothesis},
        {name: keras.layers.Identity(name=name)(outputs[name]) for name in OUTPUTS},
        name=f"nli_{arch}",
    )
    return model, encoder, heads


def compile_nli_model(model: keras.Model, hparams: Mapping[str, Any]) -> keras.Model:
    """Per-head losses and loss weights; Adam with gradient clipping.

    Entailment: sparse categorical cross-entropy on label indices ``[batch, 1]``.
    Relatedness: mean squared error in relatedness units (1-5).
    """
    model.compile(
        optimizer=keras.optimizers.Adam(float(hparams["learning_rate"]), clipnorm=1.0),
        loss={
            ENTAILMENT_OUTPUT: "sparse_categorical_crossentropy",
            RELATEDNESS_OUTPUT: "mse",
        },
        loss_weights={
            ENTAILMENT_OUTPUT: float(hparams["entailment_loss_weight"]),
            RELATEDNESS_OUTPUT: float(hparams["relatedness_loss_weight"]),
        },
        metrics={
            ENTAILMENT_OUTPUT: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
            RELATEDNESS_OUTPUT: [keras.metrics.MeanAbsoluteError(name="mae")],
        },
    )
    return model
