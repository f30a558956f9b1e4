"""TF Serving's REST JSON formats: row (``instances``) and columnar (``inputs``) requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from serving.modelserver.batching import Array, Tensors
from serving.modelserver.errors import invalid_argument
from serving.modelserver.servable import InputSpec


def parse_predict_body(body: Any, specs: Sequence[InputSpec]) -> tuple[Tensors, bool]:
    """Inputs of a predict request body, and whether it used the row format."""
    if not isinstance(body, dict):
        raise invalid_argument("JSON Value: request body is not an object")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise invalid_argument(
            "Missing 'inputs' or 'instances' key"
            if not has_rows
            else "Not a valid JSON request: both 'instances' and 'inputs' given"
        )
    if has_rows:
        return _rows_to_inputs(body["instances"], specs), True
    return _columns_to_inputs(body["inputs"], specs), False


def _rows_to_inputs(instances: Any, specs: Sequence[InputSpec]) -> Tensors:
    if not isinstance(instances, list) or not instances:
        raise invalid_argument("'instances' must be a non-empty JSON list")
    if all(isinstance(row, dict) for row in instances):
        keys = set(instances[0])
        for index, row in enumerate(instances):
            if set(row) != keys:
                raise invalid_argument(
                    f"instances[{index}] has keys {sorted(row)}; expected {sorted(keys)}"
                )
        columns = {key: [row[key] for row in instances] for key in keys}
        return {key: _to_array(key, value, specs) for key, value in columns.items()}
    if any(isinstance(row, dict) for row in instances):
        raise invalid_argument("'instances' mixes objects and plain values")
    return {_single_alias(specs): _to_array(_single_alias(specs), instances, specs)}


def _columns_to_inputs(inputs: Any, specs: Sequence[InputSpec]) -> Tensors:
    if isinstance(inputs, dict):
        return {key: _to_array(key, value, specs) for key, value in inputs.items()}
    return {_single_alias(specs): _to_array(_single_alias(specs), inputs, specs)}


def _single_alias(specs: Sequence[InputSpec]) -> str:
    if len(specs) != 1:
        names = ",".join(spec.alias for spec in specs)
        raise invalid_argument(
            f"The signature has {len(specs)} inputs ({{{names}}}); "
            "send a JSON object per instance (or an 'inputs' object) naming each input"
        )
    return specs[0].alias


def _to_array(alias: str, value: Any, specs: Sequence[InputSpec]) -> Array:
    try:
        array = np.asarray(value)
    except ValueError as error:
        raise invalid_argument(f"input '{alias}': lists must be rectangular ({error})") from error
    if array.dtype == object:
        raise invalid_argument(f"input '{alias}': lists must be rectangular with one value type")
    spec = next((spec for spec in specs if spec.alias == alias), None)
    if spec is None:  # unknown alias: left as is so validation reports it as extra
        return array
    target = np.dtype(spec.dtype.as_numpy_dtype)
    float_into_int = array.dtype.kind in "fc" and target.kind in "iub"
    text_mismatch = (array.dtype.kind in "US") != (target.kind in "SUO")
    if float_into_int or text_mismatch:
        raise invalid_argument(
            f"input '{alias}': JSON values of type {array.dtype.name} are not of expected "
            f"type: {spec.dtype.name}"
        )
    return array.astype(target) if array.size else array.astype(target).reshape(array.shape)


def render_outputs(outputs: Tensors, row_format: bool) -> dict[str, Any]:
    """``{"predictions": ...}`` for row requests, ``{"outputs": ...}`` for columnar ones."""
    if not row_format:
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {key: value.tolist() for key, value in outputs.items()}}
    sizes = {value.shape[0] if value.ndim else None for value in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid_argument(
            "Tensor outputs have different 0th dimensions; use the columnar 'inputs' format"
        )
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values())).tolist()}
    rows = sizes.pop() or 0
    return {
        "predictions": [
            {key: value[index].tolist() for key, value in outputs.items()} for index in range(rows)
        ]
    }
