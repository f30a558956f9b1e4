"""Whether a request's tensors can join a batch (the merging: :mod:`serving.tensor_batches`).

The tensor check of :mod:`serving.modelserver.batching` (which queues and schedules batches).
"""

from __future__ import annotations

import numpy as np

from serving.modelserver.errors import invalid_argument
from serving.tensor_batches import Tensors


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
