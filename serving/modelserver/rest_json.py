"""TF Serving's REST JSON formats: row (``instances``) and columnar (``inputs``) requests.

Each value is converted to its input's dtype by :func:`serving.modelserver.json_tensor.to_array`
(TF Serving's ``json_tensor.cc``, with its error wording). Strings may be sent as
``{"b64": "..."}``; string outputs whose alias ends in ``_bytes`` are answered that way.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.modelserver.errors import ServingError, invalid_argument
from serving.modelserver.json_tensor import B64, debug, is_b64, to_array
from serving.modelserver.signature_checks import InputSpec
from serving.tensor_batches import Array, Tensors


def parse_predict_body(
    body: Any, specs: Sequence[InputSpec], booleans: bool = True
) -> tuple[Tensors, bool]:
    """Inputs of a predict request body, and whether it used the row format (``booleans``:
    whether the body may hold JSON ``true``/``false``, see :func:`to_array`)."""
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
        return _rows_to_inputs(instances, {spec.alias: spec for spec in specs}, booleans), True
    if has_columns:
        return _columns_to_inputs(body["inputs"], specs, booleans), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _rows_to_inputs(instances: list[Any], specs: dict[str, InputSpec], booleans: bool) -> Tensors:
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
                _append_row(rows.setdefault(key, []), to_array(value, specs[key], booleans))
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


def _columns_to_inputs(inputs: Any, specs: Sequence[InputSpec], booleans: bool) -> Tensors:
    if not _is_named_object(inputs):
        if len(specs) > 1:
            raise invalid_argument(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        return {specs[0].alias: _column(inputs, specs[0], booleans)}
    tensors = {}
    for spec in specs:  # keys not in the signature are ignored, as TF Serving does
        if spec.alias not in inputs:
            raise invalid_argument(f"Missing named input: {spec.alias} in 'inputs' object.")
        tensors[spec.alias] = _column(inputs[spec.alias], spec, booleans)
    return tensors


def _column(value: Any, spec: InputSpec, booleans: bool) -> Array:
    try:
        return to_array(value, spec, booleans)
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
    return isinstance(value, dict) and not is_b64(value)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(size) for size in shape) + "]"


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
