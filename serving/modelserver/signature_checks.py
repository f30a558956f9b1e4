"""How a request is checked against a signature of a loaded version, with TF Serving's
error wording: its input names, each input's dtype, the outputs it asks for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

from serving.modelserver.errors import invalid_argument

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class InputSpec:
    """A signature input's alias, dtype and shape (``None`` for unknown rank)."""

    alias: str
    dtype: tf.DType
    shape: tuple[int, ...] | None


def tensor_shape(shape: Any) -> tuple[int, ...] | None:
    """A TensorShapeProto as a tuple (-1: unknown size), None for unknown rank."""
    return None if shape.unknown_rank else tuple(int(dim.size) for dim in shape.dim)


def check_input_names(sent: set[str], expected: list[str]) -> None:
    """INVALID_ARGUMENT, in TF Serving's words, unless ``sent`` are the signature's inputs."""
    if sent == set(expected):
        return
    extra = sorted(sent - set(expected))
    missing = sorted(set(expected) - sent)
    raise invalid_argument(
        f"input size does not match signature: {len(sent)}!={len(expected)} "
        f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(expected)}}}). "
        f"Sent extra: {{{','.join(extra)}}}. Missing but required: {{{','.join(missing)}}}."
    )


def check_dtype(index: int, spec: InputSpec, value: Array) -> None:
    """INVALID_ARGUMENT unless ``value`` (fed as argument ``index``) has ``spec``'s dtype."""
    actual = tf.dtypes.as_dtype(value.dtype) if value.dtype != object else tf.string
    if actual != spec.dtype:
        # TensorFlow's own wording for a fed tensor of the wrong type (what TF Serving sends).
        raise invalid_argument(
            f"Expects arg[{index}] to be {spec.dtype.name} but {actual.name} is provided "
            f"(input '{spec.alias}')"
        )


def selected_outputs(
    signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]
) -> list[str]:
    """The output aliases a request fetches: ``output_filter`` (each a signature output, none
    twice: INVALID_ARGUMENT otherwise, in TF Serving's words), or every output, sorted."""
    names = sorted(signature.outputs)
    if not output_filter:
        return names
    seen: set[str] = set()
    for alias in output_filter:
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(names)}}}."
            )
        seen.add(alias)
    return list(output_filter)
