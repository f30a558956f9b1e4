"""Batches of similar length, trimmed to their longest row, for variable-length models.

Padding every example to the longest story wastes most of the compute on pad ids; a batch of
similar lengths trimmed to its own longest row costs only what it holds. Rows are padded on
the right (see ``serving.tokenization.encode_texts``), so trimming trailing columns that are
all padding changes no example.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from serving.contract import PAD_ID
from training.tasks.base import Arrays


class LengthBuckets:
    """Length-sorted batches; batches and their order are redrawn every epoch."""

    def __init__(
        self,
        inputs: Arrays,
        targets: Arrays,
        weights: Arrays | None,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
    ) -> None:
        self.inputs, self.targets, self.weights = inputs, targets, weights
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.lengths = sum(np.count_nonzero(value != PAD_ID, axis=1) for value in inputs.values())
        self.batches = self._make_batches()

    def _make_batches(self) -> list[npt.NDArray[np.int64]]:
        # Jitter the sort key so batches differ between epochs while lengths stay close.
        jitter = self.rng.uniform(0, 8, len(self.lengths)) if self.shuffle else 0
        order = np.argsort(self.lengths + jitter, kind="stable")
        batches = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        if self.shuffle:
            self.rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        rows = self.batches[index]
        inputs = {key: trim_padding(value[rows]) for key, value in self.inputs.items()}
        targets = {key: value[rows] for key, value in self.targets.items()}
        if self.weights is None:
            return inputs, targets
        return inputs, targets, {key: value[rows] for key, value in self.weights.items()}

    def on_epoch_end(self) -> None:
        """New batches for the next epoch."""
        self.batches = self._make_batches()

    def as_dataset(self) -> tf.data.Dataset:
        """A ``tf.data`` dataset of these batches for ``model.fit``, one pass per epoch.

        The signature leaves every length dimension open: a Keras ``PyDataset`` would infer
        fixed lengths from its first batches and fail on a later, longer one.
        """

        def generate() -> Any:
            # tf.data calls this once per epoch: fresh batches each time.
            self.on_epoch_end()
            for index in range(len(self)):
                yield self[index]

        first = self[0]
        signature = tuple(
            {
                key: tf.TensorSpec((None,) * value.ndim, tf.as_dtype(value.dtype))
                for key, value in part.items()
            }
            for part in first
        )
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(2)


def trim_padding(ids: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Drop the trailing columns that are padding in every row (keeping at least one)."""
    used = np.flatnonzero((ids != PAD_ID).any(axis=0))
    width = int(used[-1]) + 1 if len(used) else 1
    return ids[:, :width]
