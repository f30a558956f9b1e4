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

from serving.contract import PAD_ID


@keras.saving.register_keras_serializable(package="multihead")
class JoinedPair(keras.layers.Layer):  # type: ignore[misc]
    """``(first_ids, second_ids)`` ``[batch, length]`` -> ``(ids, token_type_ids)``, both
    ``[batch, joined length]`` of the inputs' dtype, padded with ``pad_id`` (types with 0).

    Args:
        pad_id: the spec's ``pad_id``: trailing ids equal to it or to 0 (the model server's
            batching pads with 0) are padding, never text (a real id equal to either at a
            row's end would be dropped).
        drop_leading: ids dropped from the start of each second text (1: BERT's ``[CLS]``).
    """

    def __init__(self, pad_id: int = 0, drop_leading: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad_id = pad_id
        self.drop_leading = drop_leading

    def call(self, first: Any, second: Any) -> tuple[Any, Any]:
        """The joined ids and their token types (see the class)."""
        left = tf.RaggedTensor.from_tensor(first, lengths=self._lengths(first))
        right = tf.RaggedTensor.from_tensor(second, lengths=self._lengths(second))
        right = right[:, self.drop_leading :]
        ids = tf.concat([left, right], axis=1).to_tensor(self.pad_id)
        types = tf.concat([tf.zeros_like(left), tf.ones_like(right)], axis=1).to_tensor(0)
        return ids, types

    def _lengths(self, ids: Any) -> Any:
        """Each row's length: 1 + the position of its last id other than ``pad_id`` and 0.

        The local model server's batching pads with 0 whatever the spec's ``pad_id`` (it
        reads no spec), after the gateway's ``pad_id``s: with ``pad_id`` 1 those 0s were
        kept as text between the two texts (found by the adversarial pass breaknew6b). A
        template's text ends in its ``[SEP]``, never in 0 or ``pad_id``."""
        real = tf.logical_and(ids != self.pad_id, ids != PAD_ID)
        positions = tf.range(1, tf.shape(ids, out_type=tf.int64)[1] + 1)
        return tf.reduce_max(tf.where(real, positions[tf.newaxis, :], 0), axis=1)

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
