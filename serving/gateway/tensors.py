"""Convert numpy arrays to and from the wire ``TensorProto`` (no TensorFlow needed)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.protos import tfs_wire_pb2 as wire

# numpy dtype -> (wire DataType, the typed list field that may carry values instead of bytes)
DTYPES: dict[np.dtype[Any], tuple[wire.DataType.ValueType, str]] = {
    np.dtype(np.float32): (wire.DT_FLOAT, "float_val"),
    np.dtype(np.float64): (wire.DT_DOUBLE, "double_val"),
    np.dtype(np.int32): (wire.DT_INT32, "int_val"),
    np.dtype(np.int16): (wire.DT_INT16, "int_val"),
    np.dtype(np.int8): (wire.DT_INT8, "int_val"),
    np.dtype(np.uint8): (wire.DT_UINT8, "int_val"),
    np.dtype(np.uint16): (wire.DT_UINT16, "int_val"),
    np.dtype(np.int64): (wire.DT_INT64, "int64_val"),
    np.dtype(np.uint32): (wire.DT_UINT32, "uint32_val"),
    np.dtype(np.uint64): (wire.DT_UINT64, "uint64_val"),
    np.dtype(np.bool_): (wire.DT_BOOL, "bool_val"),
    np.dtype(np.float16): (wire.DT_HALF, "half_val"),
}
NUMPY_BY_WIRE: dict[wire.DataType.ValueType, np.dtype[Any]] = {
    code: dtype for dtype, (code, _) in DTYPES.items()
}
FIELD_BY_WIRE: dict[wire.DataType.ValueType, str] = {code: field for code, field in DTYPES.values()}


class TensorConversionError(ValueError):
    """A tensor the gateway cannot represent (unsupported dtype or inconsistent size)."""


def to_tensor_proto(array: npt.ArrayLike) -> wire.TensorProto:
    """Encode an array as ``tensor_content`` bytes (little-endian), or ``string_val``."""
    tensor = wire.TensorProto()
    fill_tensor_proto(tensor, array)
    return tensor


def fill_tensor_proto(tensor: wire.TensorProto, array: npt.ArrayLike) -> None:
    """:func:`to_tensor_proto` written into an empty ``tensor`` in place (such as a request's
    ``inputs[key]``: no second message and copy per input)."""
    values = np.asarray(array)
    dims = tensor.tensor_shape.dim
    for size in values.shape:
        dims.add(size=size)
    if values.dtype.kind in "SUO":
        tensor.dtype = wire.DT_STRING
        tensor.string_val.extend([_as_bytes(item) for item in values.reshape(-1)])
        return
    if values.dtype not in DTYPES:
        raise TensorConversionError(f"unsupported dtype {values.dtype}")
    tensor.dtype = DTYPES[values.dtype][0]
    tensor.tensor_content = values.astype(values.dtype.newbyteorder("<"), copy=False).tobytes()


def from_tensor_proto(tensor: wire.TensorProto) -> npt.NDArray[Any]:
    """Decode a ``TensorProto`` whether it carries ``tensor_content`` or a typed value list."""
    shape = tuple([dim.size for dim in tensor.tensor_shape.dim])
    if tensor.dtype == wire.DT_STRING:
        return _fill(np.array(list(tensor.string_val), dtype=object), shape)
    if tensor.dtype == wire.DT_BFLOAT16:
        return _fill(_bfloat16(tensor), shape)
    if tensor.dtype not in NUMPY_BY_WIRE:
        raise TensorConversionError(f"unsupported dtype {wire.DataType.Name(tensor.dtype)}")
    dtype = NUMPY_BY_WIRE[tensor.dtype]
    if tensor.tensor_content:
        flat = np.frombuffer(tensor.tensor_content, dtype=dtype.newbyteorder("<"))
        return _fill(flat.astype(dtype), shape)
    values: Any = getattr(tensor, FIELD_BY_WIRE[tensor.dtype])
    if tensor.dtype == wire.DT_HALF:
        # half_val carries the raw 16 bits of each float16 in an int32.
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    else:
        flat = np.array(values, dtype=dtype)
    return _fill(flat, shape)


def _bfloat16(tensor: wire.TensorProto) -> npt.NDArray[np.float32]:
    """A bfloat16 tensor's values as float32 (exactly: a bfloat16 is the upper 16 bits of a
    float32). TF packs them as little-endian bytes or, one per int32, in ``half_val``; numpy
    has no bfloat16, and a mixed-precision model's head outputs one."""
    if tensor.tensor_content:
        bits = np.frombuffer(tensor.tensor_content, dtype="<u2").astype(np.uint32)
    else:
        bits = np.array(tensor.half_val, dtype=np.uint32)
    return (bits << 16).view(np.float32)


def _fill(flat: npt.NDArray[Any], shape: tuple[int, ...]) -> npt.NDArray[Any]:
    size = math.prod(shape)  # C ints: numpy's prod costs a Python reduction per output
    if flat.size == size:
        return flat.reshape(shape)
    # TF allows one value to stand for a whole tensor of that value.
    if flat.size == 1:
        return np.full(shape, flat[0], dtype=flat.dtype)
    if flat.size == 0:
        return np.zeros(shape, dtype=flat.dtype)
    raise TensorConversionError(f"{flat.size} values cannot fill shape {list(shape)}")


def _as_bytes(item: object) -> bytes:
    return item if isinstance(item, bytes) else str(item).encode("utf-8")
