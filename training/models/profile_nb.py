"""NB-SVM feature weighting for the ``profile`` gender head (Wang & Manning 2012).

"Baselines and Bigrams: Simple, Good Sentiment and Topic Classification" (ACL 2012) scales
each feature by its log-count ratio between the two classes before a linear classifier:

    p = alpha + sum of the binarised feature over the positive rows
    q = alpha + sum of the binarised feature over the negative rows
    r = log((p / |p|_1) / (q / |q|_1))

so the features that tell the classes apart get large inputs (with Adam, a faster-moving
weight) and the rest near zero. Here ``r`` is computed from the training ids like the IDF
table (document frequencies per class) and kept as a non-trainable weight saved with the
model: serving still needs nothing but the ids.

The age NB towers (``age_nb_units``, off in every preset) apply the same scaling with one
ratio per age-band edge (bloggers at or above 20 / 30 years vs below) and feed the age and
band heads (training/README_models.md, round 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from training.models.profile_heads import AGE_BAND_EDGES
from training.models.profile_sparse import scale_columns


def log_count_ratio(
    positive_frequency: npt.NDArray[Any], negative_frequency: npt.NDArray[Any], alpha: float
) -> npt.NDArray[np.float32]:
    """``r = log((p / |p|_1) / (q / |q|_1))`` with ``p``, ``q`` the smoothed per-class counts.

    ``positive_frequency`` / ``negative_frequency``: ``[features]`` document frequencies (rows
    of each class containing the feature); ``alpha`` > 0 is the smoothing count (1 in the
    paper). Raises ``ValueError`` for a non-positive ``alpha`` or shapes that differ.
    """
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if positive_frequency.shape != negative_frequency.shape:
        raise ValueError("positive and negative frequencies must have the same shape")
    p = alpha + positive_frequency.astype(np.float64)
    q = alpha + negative_frequency.astype(np.float64)
    ratio: npt.NDArray[np.float32] = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    return ratio


@keras.saving.register_keras_serializable(package="profile")
class NbDense(keras.layers.Dense):  # type: ignore[misc]
    """A ``Dense`` layer over ``features * r``, with ``r`` a fixed per-feature ratio ``[size]``.

    ``r`` is a non-trainable weight (zeros until ``set_ratio``), saved with the model. The
    input is scaled, not the kernel: ``(features * r) @ kernel`` equals
    ``features @ (r[:, None] * kernel)``, but a served call has one or a few rows, and
    scaling the ``[size, units]`` kernel on every call (181k x 32 floats in the default
    preset) cost 3.3 ms of CPU per call against 0.9 ms (one row, TF 2 on this project's
    2-core machine, ``loadtests/README.md`` round 5).
    """

    def build(self, input_shape: Any) -> None:
        """The dense weights plus the ratio table."""
        super().build(input_shape)
        self.ratio = self.add_weight(
            shape=(input_shape[-1],), initializer="zeros", trainable=False, name="ratio"
        )

    def set_ratio(self, ratio: npt.NDArray[Any]) -> None:
        """Set ``r`` (``[size]`` floats, e.g. from :func:`log_count_ratio`)."""
        if ratio.shape != tuple(self.ratio.shape):
            raise ValueError(f"ratio must have shape {tuple(self.ratio.shape)}, got {ratio.shape}")
        self.ratio.assign(ratio.astype("float32"))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """``activation((features * r) @ kernel + bias)``; ``features`` float32
        ``[batch, size]``, dense or a ``tf.SparseTensor`` (the TF-IDF rows at inference: then
        an embedding bag of the kernel rows of the terms present, each weighted by its
        TF-IDF value times its ``r``)."""
        if isinstance(inputs, tf.SparseTensor):
            scaled = scale_columns(inputs, self.ratio)
        else:
            scaled = inputs * self.ratio
        outputs = keras.ops.matmul(scaled, self.kernel)
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


def document_frequency(ids: npt.NDArray[Any], size: int) -> npt.NDArray[np.int64]:
    """How many rows of an id matrix contain each id (ids must be < size)."""
    frequency = np.zeros(size, np.int64)
    for row in ids:
        frequency[np.unique(row)] += 1
    return frequency


def age_nb_layer(edge: float) -> str:
    """Name of the age NB tower whose ratio splits the training bloggers at ``edge`` years."""
    return f"age_nb_{edge:g}"


def age_nb_towers(dropped: Any, hparams: Mapping[str, Any]) -> Any:
    """``age_nb_units`` ReLU units per band edge (20, 30) over ``dropped`` (the TF-IDF features
    after the shared dropout) times that edge's log-count ratio (bloggers at or above the edge
    vs below), concatenated and dropped out: ``[batch, 2 * units]``; None when
    ``age_nb_units`` is 0 or the arch is not ``tfidf``. Their ratios are set by
    :func:`set_age_nb_ratios`."""
    units = int(hparams.get("age_nb_units", 0))
    if units < 1 or hparams["arch"] != "tfidf":
        return None
    towers = [
        NbDense(units, activation="relu", name=age_nb_layer(edge))(dropped)
        for edge in AGE_BAND_EDGES
    ]
    return keras.layers.Dropout(float(hparams["dropout"]))(keras.layers.Concatenate()(towers))


def with_age_nb(
    hidden: Any,
    towers: Any,
    units: int,
    name: str,
    activation: str | None = None,
    bias_initializer: Any = "zeros",
) -> Any:
    """An age head (``units`` outputs named ``name``) over ``hidden`` and, when ``towers`` is
    not None, plus a term from the age NB towers (zeros at the start, as the gender term):
    ``activation(dense(hidden) + dense(towers))``."""
    if towers is None:
        return keras.layers.Dense(
            units, activation=activation, bias_initializer=bias_initializer, name=name
        )(hidden)
    from_hidden = keras.layers.Dense(
        units, bias_initializer=bias_initializer, name=f"{name}_from_hidden"
    )(hidden)
    from_nb = keras.layers.Dense(
        units, kernel_initializer="zeros", use_bias=False, name=f"{name}_from_nb"
    )(towers)
    if activation is None:
        return keras.layers.Add(name=name)([from_hidden, from_nb])
    logits = keras.layers.Add()([from_hidden, from_nb])
    return keras.layers.Activation(activation, name=name)(logits)


def set_age_nb_ratios(
    model: keras.Model,
    blocks: Sequence[tuple[Any, npt.NDArray[Any]]],
    frequencies: Sequence[npt.NDArray[Any]],
    age: npt.NDArray[Any] | None,
    alpha: float,
) -> None:
    """Set each age NB tower's ratio (if the model has them) from the training ages (years):
    bloggers at or above its edge vs below, over the feature blocks (``(TfIdfBag layer, id
    matrix)`` pairs, with each block's document frequencies over all rows in ``frequencies``).
    Raises ``ValueError`` if the model has the towers and ``age`` is None."""
    names = [layer.name for layer in model.layers]
    if age_nb_layer(AGE_BAND_EDGES[0]) not in names:
        return
    if age is None:
        raise ValueError("the model has age NB towers: pass the training ages")
    ages = np.asarray(age).reshape(-1)
    for edge in AGE_BAND_EDGES:
        above = ages >= edge
        ratios = []
        for (layer, block_ids), everyone in zip(blocks, frequencies, strict=True):
            positive = document_frequency(block_ids[above], layer.size)
            ratios.append(log_count_ratio(positive, everyone - positive, alpha))
        model.get_layer(age_nb_layer(edge)).set_ratio(np.concatenate(ratios))
