"""A JSON value as a tensor of a signature input's dtype, as TF Serving's ``json_tensor.cc``.

Values are converted to the signature's dtype with TF Serving's error wording: a value of the
wrong JSON type or out of the dtype's range is ``JSON Value: V Type: T is not of expected
type: D`` (TF Serving checks int8/int16/uint8 against int32 only; this server checks every
integer dtype's own range). Strings may be sent as ``{"b64": "..."}``. The request formats
that hold these values are :mod:`serving.modelserver.rest_json`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import numpy as np

from serving.modelserver.errors import invalid_argument
from serving.modelserver.signature_checks import InputSpec
from serving.tensor_batches import Array

B64 = "b64"
DEBUG_CHARS = 200
# numpy arrays have at most 64 dimensions, and the row format stacks rows into one more.
MAX_RANK = 63
MAX_DOUBLE = int(np.finfo(np.float64).max)


def is_b64(value: Any) -> bool:
    """Whether a JSON value is a base64 string, ``{"b64": "..."}``."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def to_array(value: Any, spec: InputSpec, booleans: bool = True) -> Array:
    """A JSON value as an array of the input's dtype; INVALID_ARGUMENT with TF's wording.

    ``booleans``: whether the value may hold JSON ``true``/``false``. numpy reads ``[1, true]``
    as ``[1, 1]``, while TF Serving refuses a boolean for a number, so numbers are then read
    one by one; a body without those words (``rest.py`` looks) takes numpy's fast path.
    """
    shape = _dense_shape(value)
    if len(shape) > MAX_RANK:
        raise invalid_argument(
            f"JSON Value: {debug(value)} has {len(shape)} levels of lists; a tensor of at most "
            f"{MAX_RANK} dimensions is supported"
        )
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind not in "OSU" and not booleans:
        array = _fast_numeric(value, target)
        if array is not None:
            return array
    leaves: list[Any] = []
    _fill(value, 0, shape, spec, leaves)
    if target.kind in "OSU":
        return np.array(leaves, dtype=object).reshape(shape)
    return np.array(leaves, dtype=target).reshape(shape)


def _fast_numeric(value: Any, target: np.dtype[Any]) -> Array | None:
    """numpy's conversion when it is clearly right; None sends the value to the exact walk."""
    try:
        array = np.asarray(value)
    except (ValueError, OverflowError):
        return None
    if array.size == 0:
        return None
    kind = array.dtype.kind
    if target.kind not in "biufc":  # ml_dtypes' (bfloat16, int4, qint8: 'V') have no iinfo
        return None
    if target.kind == "b":
        return array if kind == "b" else None
    if target.kind == "f" or target.kind == "c":
        return array.astype(target) if kind in "iuf" else None
    if kind not in "iu":
        return None
    limits = np.iinfo(target)
    if array.min() < limits.min or array.max() > limits.max:
        return None
    return array.astype(target)


def _dense_shape(value: Any) -> tuple[int, ...]:
    """The shape implied by the first element at each level (TF's GetDenseTensorShape)."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _fill(value: Any, level: int, shape: tuple[int, ...], spec: InputSpec, out: list[Any]) -> None:
    if not isinstance(value, list):
        if level != len(shape):
            raise invalid_argument(
                f"JSON Value: {debug(value)} found at incorrect level: {level + 1} in the "
                f"JSON DOM. Expected at level: {len(shape)}"
            )
        out.append(_leaf(value, spec))
        return
    if level >= len(shape):
        raise invalid_argument(
            f"Encountered list at unexpected level: {level} expected < {len(shape)}"
        )
    if len(value) != shape[level]:
        raise invalid_argument(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _fill(item, level + 1, shape, spec, out)


def _leaf(value: Any, spec: InputSpec) -> Any:
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind in "OSU":
        if isinstance(value, str):
            return _utf8(value)
        if isinstance(value, dict):
            return _decode_b64(value)
    elif isinstance(value, bool):
        if target.kind == "b":
            return value
    elif isinstance(value, int) and target.kind in "iu":
        limits = np.iinfo(target)
        if limits.min <= value <= limits.max:
            return value
    elif isinstance(value, float) and target.kind in "fc":
        return value
    elif isinstance(value, int) and target.kind in "fc" and abs(value) <= MAX_DOUBLE:
        # a float (ml_dtypes' float8 takes no int past int64); a larger int no double holds
        # (numpy's OverflowError), and RapidJSON refuses it
        return float(value)
    raise invalid_argument(
        f"JSON Value: {debug(value)} Type: {_json_type(value)} is not of expected type: "
        f"{spec.dtype.name}"
    )


def _utf8(text: str) -> bytes:
    """A JSON string's UTF-8 bytes; a lone surrogate (``"\\ud800"``: Python's parser lets it
    through, RapidJSON refuses it) has none."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise invalid_argument(
            f"JSON Value: {debug(text)} is not valid text: The surrogate pair in string is invalid."
        ) from error


def _decode_b64(value: dict[str, Any]) -> bytes:
    if not is_b64(value):
        raise invalid_argument(
            f"JSON Value: {debug(value)} not formatted correctly for base64 data"
        )
    try:
        return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError) as error:
        raise invalid_argument("Unable to base64 decode") from error


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    return "String" if isinstance(value, str) else "Number"


def debug(value: Any) -> str:
    """Compact JSON of a value for an error message (cut at 200 characters)."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except RecursionError:  # as deep as the parser allowed, but the stack is deeper now
        return "(nested too deeply to show)"
    return text if len(text) <= DEBUG_CHARS else text[:DEBUG_CHARS] + "..."
