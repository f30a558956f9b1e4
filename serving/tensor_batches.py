"""Requests' tensors merged along axis 0 (right-padded) and a batch's outputs sliced back.

One implementation for both places that batch: the local model server's batching session
(:mod:`serving.modelserver.batching`, as TF Serving's ``pad_variable_length_inputs``) and the
gateway's request coalescing (:mod:`serving.gateway.coalescing`). Padding is safe because of
the serving contract: every input is a matrix of token ids right-padded with the spec's
``pad_id``, which every model masks or ignores (``serving.spec.ServingSpec.pad_id``), so a
row padded further gives the same outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.contract import PAD_ID
from serving.spec import ServingSpec

Array = npt.NDArray[Any]
Tensors = dict[str, Array]


def rows_of(inputs: Tensors) -> int:
    """The batch size (0th dimension) of a request's inputs; 0 for no inputs."""
    return int(next(iter(inputs.values())).shape[0]) if inputs else 0


def merge_inputs(requests: Sequence[Tensors], pad: bool, pad_value: int = PAD_ID) -> Tensors:
    """Concatenate requests along axis 0, right-padding other axes to the longest if ``pad``.

    Every request must have the same input names (the first one's are used) and, without
    ``pad``, the same sizes past axis 0 (else numpy's ValueError)."""
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
    """Slice batched outputs back into one dict per request (views, not copies): request
    ``i`` gets rows ``sum(row_counts[:i])`` to ``sum(row_counts[:i + 1])`` of every output."""
    bounds = np.cumsum([0, *row_counts])
    return [
        {key: value[bounds[index] : bounds[index + 1]] for key, value in outputs.items()}
        for index in range(len(row_counts))
    ]


# The padding probe of export (training.saved_model) and of the gateway's fit check: batching
# pads each request to its batch's longest, so a model must answer the same padded further.
PAD_PROBE_COLUMNS = 3  # pad columns added to each input, never past its max_tokens
PAD_RTOL, PAD_ATOL = 1e-3, 1e-5  # float32 kernels of another shape round far below these


def pad_values(spec: ServingSpec) -> tuple[int, ...]:
    """The ids a batch may pad a version's inputs with: the spec's ``pad_id`` (the gateway's
    coalescing) and ``PAD_ID`` (0, the local model server's batching, which does not read
    specs), once each."""
    return (spec.pad_id,) if spec.pad_id == PAD_ID else (spec.pad_id, PAD_ID)


def left_padding_hint(spec: ServingSpec) -> str:
    """What a refusal for moved answers adds when an input has ``padding: left``, or "".

    A fixed-length input never moves in the padding probe (the exported signature pads it to
    its length), so a left-padded input that moved is one of any length: its text starts
    later in a longer batch, which a model reading positions sees.
    """
    left = [item.field for item in spec.inputs if item.padding == "left"]
    if not left:
        return ""
    return (
        f"; with padding 'left', {left} start later in a longer batch: a model that reads "
        "positions (position embeddings, an RNN without a mask) needs a fixed length, "
        "keras.Input((length,)), which the exported signature pads to"
    )


def pad_description(spec: ServingSpec, value: int) -> str:
    """How a probe's pad id is named in a refusal: ``pad_id 1``, or the model server's 0."""
    if value == spec.pad_id:
        return f"pad_id {value}"
    return f"{value}, as the model server's batching pads (the spec's pad_id is {spec.pad_id})"


def padded_further(spec: ServingSpec, tensors: Tensors, pad_value: int | None = None) -> Tensors:
    """Each spec input of ``tensors`` (int32 ``[rows, length]``) right-padded with up to
    ``PAD_PROBE_COLUMNS`` more ``pad_value`` columns (default ``spec.pad_id``), never past its
    ``max_tokens`` (a batch never pads past its longest request); an input already that long
    is returned as is.
    """
    value = spec.pad_id if pad_value is None else pad_value
    padded: Tensors = {}
    for item in spec.inputs:
        ids = tensors[item.tensor]
        extra = max(0, min(PAD_PROBE_COLUMNS, item.max_tokens - ids.shape[1]))
        padded[item.tensor] = _pad_to(ids, (ids.shape[1] + extra,), value)
    return padded


def moved_output(before: Mapping[str, Array], after: Mapping[str, Array]) -> str | None:
    """The first output of ``before`` that ``after`` lacks, reshapes, or moves beyond
    ``PAD_RTOL``/``PAD_ATOL``; None when every one agrees.

    A per-token output (``[rows, tokens, labels]``, a ``token_labels`` head) gains a position
    per pad column: its positions of ``before`` are compared, the added ones are padding."""
    for name, value in before.items():
        other = after.get(name)
        if (
            other is not None
            and value.ndim == 3
            and other.ndim == 3
            and other.shape[1] >= value.shape[1]
        ):
            other = other[:, : value.shape[1]]
        if (
            other is None
            or other.shape != value.shape
            or not np.allclose(value, other, rtol=PAD_RTOL, atol=PAD_ATOL)
        ):
            return name
    return None


def random_output_reason(name: str) -> str:
    """Why a version is refused whose output ``name`` moved when the same ids were sent again:
    the padding probe (:func:`moved_output` after :func:`padded_further`) blamed its padding,
    yet the model masked it and was random at inference (Monte Carlo dropout: a ``Dropout``
    called with ``training=True`` in a subclassed model's ``call``, or a noise op). Export and
    the gateway's fit check repeat the unpadded call only when the padded one moved."""
    return (
        f"output {name} changes between two calls on the same ids: the model is random at "
        "inference (a Dropout or noise layer called with training=True?), so one text would "
        "get other answers on each request; call such layers without training=True"
    )


def longest_rows(spec: ServingSpec, tensors: Tensors) -> list[tuple[str, Tensors]]:
    """Per spec input, the first instance of ``tensors`` with that input's row made
    ``max_tokens`` ids long (its non-pad ids repeated): the longest row the gateway sends.

    The probe of export (``training.saved_model``) and of the gateway's fit check: the spec's
    example is short, and a model with fewer positions (a position embedding of 128 rows
    under ``max_tokens`` 256) fails every long request. Returns (input field, int32 inputs of
    one row each) pairs in the spec's input order.
    """
    probes: list[tuple[str, Tensors]] = []
    for item in spec.inputs:
        probe = {key: value[:1] for key, value in tensors.items()}
        row = probe[item.tensor][0]
        words = row[row != spec.pad_id] if (row != spec.pad_id).any() else row
        probe[item.tensor] = np.resize(words, (1, item.max_tokens)).astype(np.int32)
        probes.append((item.field, probe))
    return probes
