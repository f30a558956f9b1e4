"""Serve a cross-encoder (one sequence for a pair of texts, BERT's ``[CLS] a [SEP] b [SEP]``).

The gateway encodes each of a spec's inputs on its own (``tokenizer.encode(text)``), so a model
trained on ``tokenizer.encode(a, b)``, one sequence with token type ids, has no input the spec
can describe. :class:`JoinedPair` rebuilds that sequence inside the model from the two served
id matrices: the first text's ids without their padding, then the second's without their first
``drop_leading`` ids (its ``[CLS]``) and padding, padded again at the end; token type 0 for the
first part, 1 for the second. For a ``TemplateProcessing`` of BERT's form (single ``[CLS] $A
[SEP]``, pair ``[CLS] $A [SEP] $B:1 [SEP]:1``) that is ``tokenizer.encode(a, b)``'s ``ids`` and
``type_ids``, as long as neither text is cut (each input is cut at its own ``max_tokens``,
not by the tokenizer's pair truncation).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="multihead")
class JoinedPair(keras.layers.Layer):  # type: ignore[misc]
    """``(first_ids, second_ids)`` ``[batch, length]`` -> ``(ids, token_type_ids)``, both
    ``[batch, joined length]`` of the inputs' dtype, padded with ``pad_id`` (types with 0).

    Args:
        pad_id: the spec's ``pad_id``: trailing ids equal to it are padding, never text (a
            real id equal to ``pad_id`` at a row's end would be dropped).
        drop_leading: ids dropped from the start of each second text (1: BERT's ``[CLS]``).
    """

    def __init__(self, pad_id: int = 0, drop_leading: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad_id = pad_id
        self.drop_leading = drop_leading

    def call(self, first: Any, second: Any) -> tuple[Any, Any]:
        """The joined ids and their token types (see the class)."""
        left = tf.RaggedTensor.from_tensor(first, padding=self.pad_id)
        right = tf.RaggedTensor.from_tensor(second, padding=self.pad_id)[:, self.drop_leading :]
        ids = tf.concat([left, right], axis=1).to_tensor(self.pad_id)
        types = tf.concat([tf.zeros_like(left), tf.ones_like(right)], axis=1).to_tensor(0)
        return ids, types

    def compute_output_spec(self, first: Any, second: Any) -> tuple[Any, Any]:
        """Both ``[batch, None]`` of the ids' dtype (an int32 pair stays int32)."""
        del second
        shape = (first.shape[0], None)
        return (
            keras.KerasTensor(shape, dtype=first.dtype),
            keras.KerasTensor(shape, dtype=first.dtype),
        )

    def get_config(self) -> dict[str, Any]:
        """The layer's arguments, for saving and loading the model."""
        return {**super().get_config(), "pad_id": self.pad_id, "drop_leading": self.drop_leading}
