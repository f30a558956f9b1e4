"""Keras layers shared by the models (and the tiny test models)."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="training")
class MaskedMeanPooling(keras.layers.Layer):  # type: ignore[misc]
    """Mean of the token vectors over non-padding positions (sentence-transformers pooling)."""

    def call(self, hidden: Any, ids: Any) -> Any:
        """Pool ``[batch, length, hidden]`` to ``[batch, hidden]``."""
        mask = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(ids, 0), hidden.dtype), -1)
        total = keras.ops.sum(hidden * mask, axis=1)
        # An all-padding row would divide by zero; its vector is then simply 0.
        return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1e-9)
