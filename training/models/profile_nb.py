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
class LogCountRatio(keras.layers.Layer):  # type: ignore[misc]
    """Features ``[batch, size]`` -> the same times a fixed per-feature ratio ``r`` ``[size]``.

    ``r`` is a non-trainable weight (zeros until ``set_ratio``), saved with the model.
    """

    def __init__(self, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = size

    def build(self, input_shape: Any) -> None:
        """The ratio table, zeros until ``set_ratio`` is called."""
        self.ratio = self.add_weight(
            shape=(self.size,), initializer="zeros", trainable=False, name="ratio"
        )

    def set_ratio(self, ratio: npt.NDArray[Any]) -> None:
        """Set ``r`` (``[size]`` floats, e.g. from :func:`log_count_ratio`)."""
        if ratio.shape != (self.size,):
            raise ValueError(f"ratio must have shape ({self.size},), got {ratio.shape}")
        self.ratio.assign(ratio.astype("float32"))

    def call(self, features: Any) -> Any:
        """``features * r``."""
        return features * self.ratio

    def get_config(self) -> dict[str, Any]:
        """Serializable configuration."""
        return {**super().get_config(), "size": self.size}
