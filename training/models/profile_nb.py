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
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

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
