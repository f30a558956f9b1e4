"""The siamese Keras model for ``nli``: one shared sentence encoder, two heads.

Premise and hypothesis ids go through ONE encoder (mean-pooled MiniLM by default) to vectors
``u`` and ``v``. The entailment head is a softmax over ``[u, v, |u - v|, u * v]`` (InferSent,
Conneau et al. 2017; Sentence-BERT, Reimers & Gurevych 2019): the order of ``u`` and ``v``
in that vector keeps premise and hypothesis apart, since entailment is not symmetric (a
premise may entail its hypothesis but not the reverse). Relatedness is symmetric by
definition, so its head sees only the order-free ``|u - v|`` and ``u * v``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from training import minilm
from training.data.sick import LABELS

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
    entailment = keras.layers.Dense(len(LABELS), activation="softmax", name=ENTAILMENT_OUTPUT)(
        directed
    )
    symmetric = keras.layers.Concatenate(name="symmetric_features")([difference, product])
    symmetric = keras.layers.Dropout(dropout)(symmetric)
    unit = keras.layers.Dense(1, activation="sigmoid", name="relatedness_unit")(symmetric)
    relatedness = keras.layers.Rescaling(
        RELATEDNESS_HIGH - RELATEDNESS_LOW, offset=RELATEDNESS_LOW, name=RELATEDNESS_OUTPUT
    )(unit)
    return keras.Model(
        {"premise_vector": u, "hypothesis_vector": v},
        {ENTAILMENT_OUTPUT: entailment, RELATEDNESS_OUTPUT: relatedness},
        name="heads",
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
    outputs = heads({"premise_vector": encoder(premise), "hypothesis_vector": encoder(hypothesis)})
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


def pair_vectors(
    encoder: keras.Model,
    batches: Sequence[Mapping[str, npt.NDArray[np.int32]]],
    names: Sequence[str],
    batch_size: int = 128,
) -> list[dict[str, npt.NDArray[np.float32]]]:
    """Sentence vectors for id matrices, each distinct sentence encoded once (inference mode).

    ``batches`` are dicts of int32 ``[n, length]`` id matrices (0 = padding); the result has
    the same dicts with float32 ``[n, width]`` vectors under ``<input>`` with ``_ids``
    replaced by ``_vector`` (the input names of :func:`build_heads`). SICK's 10,000 sentence
    slots hold about 5,000 distinct sentences, so encoding each once halves the cost, and
    encoding them in length order keeps padding (which costs attention work) small.
    """
    matrices = [batch[name] for batch in batches for name in names]
    width = max(matrix.shape[1] for matrix in matrices)
    rows = np.concatenate(
        [np.pad(matrix, ((0, 0), (0, width - matrix.shape[1]))) for matrix in matrices]
    )
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    order = np.argsort(np.count_nonzero(unique, axis=1), kind="stable")
    encoded = np.empty((len(unique), int(encoder.output.shape[-1])), np.float32)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        encoded[chosen] = encoder(unique[chosen], training=False)
    vectors = encoded[np.ravel(inverse)]
    result: list[dict[str, npt.NDArray[np.float32]]] = []
    offset = 0
    for batch in batches:
        part: dict[str, npt.NDArray[np.float32]] = {}
        for name in names:
            count = len(batch[name])
            part[name.removesuffix("_ids") + "_vector"] = vectors[offset : offset + count]
            offset += count
        result.append(part)
    return result
