"""TF Serving's REST JSON formats: row (``instances``) and columnar (``inputs``) requests.

Values are converted to the signature's dtype as TF Serving's ``json_tensor.cc`` does, with
its error wording: a value of the wrong JSON type or out of the dtype's range is
``JSON Value: V Type: T is not of expected type: D`` (TF Serving checks int8/int16/uint8
against int32 only; this server checks every integer dtype's own range). Strings may be sent
as ``{"b64": "..."}``; string outputs whose alias ends in ``_bytes`` are answered that way.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.modelserver.batch_tensors import Array, Tensors
from serving.modelserver.errors import ServingError, invalid_argument
from serving.modelserver.servable import InputSpec

B64 = "b64"
DEBUG_CHARS = 200
# numpy arrays have at most 64 dimensions, and the row format stacks rows into one more.
MAX_RANK = 63


def parse_predict_body(body: Any, specs: Sequence[InputSpec]) -> tuple[Tensors, bool]:
    """Inputs of a predict request body, and whether it used the row format."""
    if not isinstance(body, dict):
        raise invalid_argument(f"JSON Value: {debug(body)} Is not object")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows and has_columns:
        raise invalid_argument(
            f"JSON Value: {debug(body)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid_argument(
                f"JSON Value: {debug(body)} Expecting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid_argument(f"JSON Value: {debug(body)} No values in 'instances' array")
        return _rows_to_inputs(instances, {spec.alias: spec for spec in specs}), True
    if has_columns:
        return _columns_to_inputs(body["inputs"], specs), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _rows_to_inputs(instances: list[Any], specs: dict[str, InputSpec]) -> Tensors:
    as_objects = _is_named_object(instances[0])
    rows: dict[str, list[Array]] = {}
    for index, instance in enumerate(instances):
        if as_objects != _is_named_object(instance):
            kind = "list" if as_objects else "object"
            wanted = "object" if as_objects else "value/list"
            raise invalid_argument(
                f"Expecting {wanted} but got {kind} at item {index} of input list"
            )
        items = instance if as_objects else {_single_alias(specs): instance}
        for key, value in items.items():
            where = f"key: {key} " if as_objects else ""
            try:
                if key not in specs:
                    raise invalid_argument(f"JSON object: does not have named input: {key}")
                _append_row(rows.setdefault(key, []), to_array(value, specs[key]))
            except ServingError as error:
                raise invalid_argument(
                    f"Failed to process element: {index} {where}of 'instances' list. "
                    f"Error: INVALID_ARGUMENT: {error.message}"
                ) from error
        if as_objects and set(instance) != set(specs):
            raise invalid_argument(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{debug(instance)} keys must be equal to: {','.join(sorted(specs))}"
            )
    return {key: np.stack(values) for key, values in rows.items()}


def _append_row(rows: list[Array], row: Array) -> None:
    if rows and rows[0].size != row.size:
        raise invalid_argument(f"Expecting tensor size: {rows[0].size} but got: {row.size}")
    if rows and rows[0].shape != row.shape:
        raise invalid_argument(
            f"Expecting shape {_shape(rows[0].shape)} but got: {_shape(row.shape)}"
        )
    rows.append(row)


def _columns_to_inputs(inputs: Any, specs: Sequence[InputSpec]) -> Tensors:
    if not _is_named_object(inputs):
        if len(specs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {specs[0].alias: _column(inputs, specs[0])}
    tensors = {}
    for spec in specs:  # keys not in the signature are ignored, as TF Serving does
        if spec.alias not in inputs:
            raise invalid_argument(f"Missing named input: {spec.alias} in 'inputs' object.")
        tensors[spec.alias] = _column(inputs[spec.alias], spec)
    return tensors


def _column(value: Any, spec: InputSpec) -> Array:
    try:
        return to_array(value, spec)
    except ServingError as error:  # TF Serving's words, plus which input (it does not say)
        raise invalid_argument(f"{error.message} (input '{spec.alias}')") from error


def _single_alias(specs: dict[str, InputSpec]) -> str:
    if len(specs) != 1:
        raise invalid_argument(
            f"The signature has {len(specs)} inputs ({{{','.join(sorted(specs))}}}); "
            "send a JSON object per instance naming each input"
        )
    return next(iter(specs))


def _is_named_object(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(B64), str)


def to_array(value: Any, spec: InputSpec) -> Array:
    """A JSON value as an array of the input's dtype; INVALID_ARGUMENT with TF's wording."""
    shape = _dense_shape(value)
    if len(shape) > MAX_RANK:
        raise invalid_argument(
            f"JSON Value: {debug(value)} has {len(shape)} levels of lists; a tensor of at most "
            f"{MAX_RANK} dimensions is supported"
        )
    target = np.dtype(spec.dtype.as_numpy_dtype)
    if target.kind not in "OSU":
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
            return value.encode("utf-8")
        if isinstance(value, dict):
            return _decode_b64(value)
    elif isinstance(value, bool):
        if target.kind == "b":
            return value
    elif isinstance(value, int) and target.kind in "iu":
        limits = np.iinfo(target)
        if limits.min <= value <= limits.max:
            return value
    elif isinstance(value, int | float) and target.kind in "fc":
        return value
    raise invalid_argument(
        f"JSON Value: {debug(value)} Type: {_json_type(value)} is not of expected type: "
        f"{spec.dtype.name}"
    )


def _decode_b64(value: dict[str, Any]) -> bytes:
    if not _is_b64(value):
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


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


def debug(value: Any) -> str:
    """Compact JSON of a value for an error message (cut at 200 characters)."""
    try:
        text = json.dumps(value, separators=(",", ":"))
    except RecursionError:  # as deep as the parser allowed, but the stack is deeper now
        return "(nested too deeply to show)"
    return text if len(text) <= DEBUG_CHARS else text[:DEBUG_CHARS] + "..."


def render_outputs(outputs: Tensors, row_format: bool) -> dict[str, Any]:
    """``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for columnar ones."""
    if not row_format:
        if len(outputs) == 1:
            alias, value = next(iter(outputs.items()))
            return {"outputs": to_json(alias, value)}
        return {"outputs": {key: to_json(key, value) for key, value in outputs.items()}}
    sizes = {key: value.shape[0] if value.ndim else None for key, value in outputs.items()}
    first = next(iter(sizes.values()))
    for key, size in sizes.items():
        if size is None or size != first:
            raise invalid_argument(
                f"Tensor name: {key} has inconsistent batch size: {size} expecting: {first}"
            )
    if len(outputs) == 1:
        alias, value = next(iter(outputs.items()))
        return {"predictions": to_json(alias, value)}
    return {
        "predictions": [
            {key: to_json(key, value[index]) for key, value in outputs.items()}
            for index in range(first or 0)
        ]
    }


def to_json(alias: str, value: Array) -> Any:
    """An output as JSON: numbers as they are, strings as text or ``{"b64"}`` for *_bytes."""
    array = np.asarray(value)
    if array.dtype.kind not in "OS":
        return array.tolist()
    as_b64 = alias.endswith("_bytes")
    return _strings(array.tolist(), as_b64)


def _strings(value: Any, as_b64: bool) -> Any:
    if isinstance(value, list):
        return [_strings(item, as_b64) for item in value]
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    if as_b64:
        return {B64: base64.b64encode(data).decode("ascii")}
    # TF Serving writes the bytes as they are; invalid UTF-8 is replaced to keep valid JSON.
    return data.decode("utf-8", errors="replace")
