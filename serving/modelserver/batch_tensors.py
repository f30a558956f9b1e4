"""A batch's tensors: requests merged along axis 0 (right-padded) and outputs sliced back.

The tensor side of :mod:`serving.modelserver.batching` (which queues and schedules batches).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID
from serving.modelserver.errors import invalid_argument

Array = npt.NDArray[Any]
Tensors = dict[str, Array]


def rows_of(inputs: Tensors) -> int:
    """The batch size (0th dimension) of a request's inputs."""
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


def check_batchable(inputs: Tensors) -> None:
    """INVALID_ARGUMENT unless every input has a 0th dimension of one common size.

    TF Serving's batching session needs this to merge requests; without batching the
    graph alone decides (source: batching_session.cc, "must have equal 0th-dimension size").
    """
    if any(np.ndim(value) == 0 for value in inputs.values()):
        raise invalid_argument("Batching Run() input tensors must have at least one dimension")
    if len({np.shape(value)[0] for value in inputs.values()}) > 1:
        raise invalid_argument(
            "Batching Run() input tensors must have equal 0th-dimension size; got "
            + ", ".join(f"{key}: {list(np.shape(value))}" for key, value in sorted(inputs.items()))
        )


def merge_inputs(requests: Sequence[Tensors], pad: bool, pad_value: int = PAD_ID) -> Tensors:
    """Concatenate requests along axis 0, right-padding other axes to the longest if ``pad``."""
    merged: Tensors = {}
    for key in requests[0]:
        parts = [request[key] for request in requests]
        if pad:
            target = np.max([part.shape[1:] for part in parts], axis=0) if parts[0].ndim > 1 else ()
            parts = [
                _pad_to(part, tuple(int(size) for size in target), pad_value) for part in parts
            ]
        merged[key] = np.concatenate(parts, axis=0)
    return merged


def _pad_to(array: Array, tail: tuple[int, ...], pad_value: int) -> Array:
    widths = [(0, 0)] + [(0, want - have) for want, have in zip(tail, array.shape[1:], strict=True)]
    if not any(after for _, after in widths):
        return array
    return np.pad(array, widths, constant_values=pad_value)


def split_outputs(outputs: Tensors, row_counts: Sequence[int]) -> list[Tensors]:
    """Slice batched outputs back into one dict per request."""
    bounds = np.cumsum([0, *row_counts])
    return [
        {key: value[bounds[index] : bounds[index + 1]] for key, value in outputs.items()}
        for index in range(len(row_counts))
    ]
