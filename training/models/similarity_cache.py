"""Fine-tune MiniLM's top blocks on cached states of its frozen lower blocks.

The frozen embeddings and lower blocks give every sentence the same states in every epoch,
so they are computed once per distinct sentence (inference mode, in length order) and kept
in one token table; training then runs only the top blocks. The cached model's inputs have
the siamese model's names, but hold token rows of that table (0 = padding), so the pipeline
batches and trims them like ids. Every trained layer is the siamese model's own, so fitting
the cached model trains the model that is evaluated and exported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID
from training.minilm import split_encoder

INPUTS = ("left_ids", "right_ids")


class CachedStates(keras.layers.Layer):  # type: ignore[misc]
    """Rows of a fixed table: int ``[batch, width]`` -> float32 ``[batch, width, hidden]``.

    The table is a constant, not a weight: checkpoints, histograms and the restored best
    weights then skip it (about 300 MB for STS train + dev). Training only; not serialized.
    """

    def __init__(self, table: npt.NDArray[np.float32], **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.table = keras.ops.convert_to_tensor(table)

    def call(self, rows: Any) -> Any:
        """The table's rows at ``rows``."""
        return keras.ops.take(self.table, rows, axis=0)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """``input_shape`` plus the table's width."""
        return (*input_shape, int(self.table.shape[-1]))


def cache_states(
    bottom: keras.Model,
    matrices: Sequence[npt.NDArray[np.int32]],
    batch_size: int = 128,
) -> tuple[npt.NDArray[np.float32], list[npt.NDArray[np.int32]]]:
    """The bottom's states of each distinct sentence once, and where to find them.

    ``matrices`` are int32 id matrices ``[n, length]`` (right-padded with 0). Returns the
    token table float32 ``[1 + tokens, hidden]`` (row 0 is zeros, for padding) and, per
    matrix, int32 ``[n, length]`` rows of that table (0 where the id is padding).
    """
    width = max(matrix.shape[1] for matrix in matrices)
    rows = np.concatenate(
        [np.pad(matrix, ((0, 0), (0, width - matrix.shape[1]))) for matrix in matrices]
    )
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    lengths = np.count_nonzero(unique != PAD_ID, axis=1)
    # Sentence s owns table rows starts[s] .. starts[s] + lengths[s] - 1 (row 0 = padding).
    starts = 1 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    table: npt.NDArray[np.float32] | None = None
    order = np.argsort(lengths, kind="stable")  # similar lengths share a batch: less padding
    for begin in range(0, len(order), batch_size):
        chosen = order[begin : begin + batch_size]
        _, states = bottom(unique[chosen], training=False)
        states = np.asarray(states, np.float32)
        if table is None:
            table = np.zeros((1 + int(lengths.sum()), states.shape[-1]), np.float32)
        for row, sentence in enumerate(chosen):
            start, length = starts[sentence], lengths[sentence]
            table[start : start + length] = states[row, :length]
    assert table is not None  # at least one sentence
    positions = np.arange(width)
    token_rows = np.where(
        positions[None, :] < lengths[:, None], starts[:, None] + positions[None, :], 0
    ).astype(np.int32)[np.ravel(inverse)]
    result, offset = [], 0
    for matrix in matrices:
        result.append(token_rows[offset : offset + len(matrix), : matrix.shape[1]])
        offset += len(matrix)
    return table, result


def cached_top_model(
    model: keras.Model, table: npt.NDArray[np.float32], trainable_layers: int
) -> keras.Model:
    """The siamese ``model``'s top blocks and score on cached states (uncompiled).

    Inputs ``left_ids`` / ``right_ids``: int32 ``[batch, width]`` rows of ``table`` (see
    :func:`cache_states`); outputs as ``model``'s (``score``, and ``cosine`` if present).
    """
    encoder = model.get_layer("minilm_encoder")
    _, top = split_encoder(encoder, trainable_layers)
    lookup = CachedStates(table, name="cached_states")
    inputs = {name: keras.Input((None,), dtype="int32", name=name) for name in INPUTS}
    vectors = [top([lookup(inputs[name]), inputs[name]]) for name in INPUTS]
    outputs: dict[str, Any] = {}
    for name in model.output_names:
        outputs[name] = model.get_layer(name)(*vectors)
    return keras.Model(inputs, outputs, name=f"{model.name}_cached")


def cached_inputs(
    model: keras.Model, arrays: Sequence[Mapping[str, npt.NDArray[np.int32]]], trainable_layers: int
) -> tuple[npt.NDArray[np.float32], list[dict[str, npt.NDArray[np.int32]]]]:
    """:func:`cache_states` for the ``left_ids`` / ``right_ids`` of each of ``arrays``."""
    bottom, _ = split_encoder(model.get_layer("minilm_encoder"), trainable_layers)
    table, rows = cache_states(bottom, [part[name] for part in arrays for name in INPUTS])
    pairs = [dict(zip(INPUTS, rows[2 * i : 2 * i + 2], strict=True)) for i in range(len(arrays))]
    return table, pairs
