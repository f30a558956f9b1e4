"""TensorProto <-> numpy for the gRPC API, encoded the way TF Serving encodes it.

TF Serving answers Predict with the typed value lists (``float_val``, ``int_val``, ...), and
with ``tensor_content`` bytes only when started with
``--enable_serialization_as_tensor_content`` (source: tensorflow_serving/servables/
tensorflow/predict_util.cc, ``Tensor::AsProtoField`` vs ``AsProtoTensorContent``).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2

from serving.modelserver.errors import invalid_argument

Array = npt.NDArray[Any]
# numpy kind+size -> the TensorProto field TF's AsProtoField fills
TYPED_FIELDS: dict[str, str] = {
    "float32": "float_val",
    "float64": "double_val",
    "int8": "int_val",
    "int16": "int_val",
    "int32": "int_val",
    "uint8": "int_val",
    "uint16": "int_val",
    "int64": "int64_val",
    "uint32": "uint32_val",
    "uint64": "uint64_val",
    "bool": "bool_val",
    "complex64": "scomplex_val",
    "complex128": "dcomplex_val",
}
# int_val is an int32 field: narrower types must be range-checked before numpy wraps them
NARROW_INTS = {tf.int8, tf.int16, tf.uint8, tf.uint16}
# TF fills a shape larger than its values by repeating the last value (tensor_util's
# make_ndarray), so a few bytes on the wire can declare gigabytes: past this many elements a
# tensor must carry its values (2**20 int32 ids are 4 MB, gRPC's default message limit).
MAX_FILLED_ELEMENTS = 2**20
# A string fill repeats the last string's bytes: a 64 KB string filling a shape of 8192 took
# 512 MB. The bytes a fill may add: those of the largest numeric fill (2**20 complex128).
MAX_FILLED_BYTES = 2**24
# numpy's most dimensions (TF allows 254): past it a shape cannot be held here
MAX_DIMS = 64
# DataType -> numpy dtype for tensor_content that np.frombuffer alone decodes (the dtypes
# the gateway sends); others take tf.make_ndarray's general path.
CONTENT_DTYPES: dict[int, np.dtype[Any]] = {
    tf.as_dtype(name).as_datatype_enum: np.dtype(name)
    for name in ("float32", "float64", "int32", "int64")
}
# native numpy dtype -> (DataType, typed field) for outputs (dtype.name is slow to compute)
OUTPUT_FIELDS: dict[np.dtype[Any], tuple[int, str]] = {
    np.dtype(name): (tf.as_dtype(name).as_datatype_enum, field)
    for name, field in TYPED_FIELDS.items()
    if not name.startswith("complex")
}


def decode_input(alias: str, proto: tensor_pb2.TensorProto) -> Array:
    """A request tensor as numpy; INVALID_ARGUMENT if it is malformed or out of its range."""
    content = proto.tensor_content
    dtype = CONTENT_DTYPES.get(proto.dtype)
    if content and dtype is not None:
        shape = [dim.size for dim in proto.tensor_shape.dim]
        fits = len(shape) <= MAX_DIMS and all(size >= 0 for size in shape)
        if fits and len(content) % dtype.itemsize == 0:
            values = np.frombuffer(content, dtype)
            if values.size == math.prod(shape):
                return values.reshape(shape).copy()  # writable, as tf.make_ndarray's
        # A malformed tensor: the general path gives its error.
    try:
        dtype = tf.dtypes.as_dtype(proto.dtype)
        if dtype in NARROW_INTS and not proto.tensor_content and proto.int_val:
            limits = np.iinfo(dtype.as_numpy_dtype)
            values = np.asarray(proto.int_val, dtype=np.int64)
            if values.min() < limits.min or values.max() > limits.max:
                raise invalid_argument(
                    f"input '{alias}': a value is out of range for {dtype.name} "
                    f"[{limits.min}, {limits.max}]"
                )
        _check_fill(alias, proto, dtype)
        array: Array = tf.make_ndarray(proto)
        return array
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        # KeyError: a dtype numpy cannot hold (DT_VARIANT, DT_RESOURCE) in as_numpy_dtype;
        # OverflowError: a value past its dtype in numpy (half_val 70000, qint8 int_val 300)
        raise invalid_argument(f"tensor parsing error: {alias}") from error


def _check_fill(alias: str, proto: tensor_pb2.TensorProto, dtype: tf.DType) -> None:
    """INVALID_ARGUMENT if the shape declares more than :data:`MAX_FILLED_ELEMENTS` elements
    and more than the proto carries (a broadcast fill that would allocate them all), or a
    string fill adds more than :data:`MAX_FILLED_BYTES` bytes."""
    declared = 1
    for dim in proto.tensor_shape.dim:
        if dim.size < 0:
            raise invalid_argument(f"input '{alias}': dimension {dim.size} is negative")
        declared *= dim.size
    strings = proto.string_val
    if dtype == tf.string and not proto.tensor_content and 0 < len(strings) < declared:
        filled = (declared - len(strings)) * len(strings[-1])
        if filled > MAX_FILLED_BYTES:
            raise invalid_argument(
                f"input '{alias}': the shape declares {declared} strings but the tensor "
                f"carries {len(strings)}; repeating the last one would add {filled} bytes "
                f"(at most {MAX_FILLED_BYTES})"
            )
    if declared <= MAX_FILLED_ELEMENTS:
        return
    if proto.tensor_content:
        carried = len(proto.tensor_content) // max(1, dtype.size)
    else:
        carried = max(
            (len(value) for field, value in proto.ListFields() if field.name.endswith("_val")),
            default=0,
        )
    if carried < declared:
        raise invalid_argument(
            f"input '{alias}': the shape declares {declared} elements but the tensor carries "
            f"{carried}; a fill past {MAX_FILLED_ELEMENTS} elements is refused"
        )


@lru_cache(maxsize=1024)
def _header(datatype: int, shape: tuple[int, ...]) -> bytes:
    """A serialised TensorProto holding only a dtype and a shape (outputs of one signature
    have few shapes: built once, merged into each response)."""
    proto = tensor_pb2.TensorProto(dtype=datatype)
    proto.tensor_shape.dim.extend(tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape)
    serialized: bytes = proto.SerializeToString()
    return serialized


def fill_output(
    proto: tensor_pb2.TensorProto, value: Array, as_tensor_content: bool = False
) -> None:
    """:func:`encode_output` written into an empty ``proto`` (a response's
    ``outputs[alias]``: no second message and copy); the same message."""
    array = np.asarray(value)
    typed = OUTPUT_FIELDS.get(array.dtype)
    if typed is None or as_tensor_content:
        proto.CopyFrom(encode_output(array, as_tensor_content))
        return
    proto.MergeFromString(_header(typed[0], array.shape))
    getattr(proto, typed[1]).extend(array.reshape(-1).tolist())


def encode_output(value: Array, as_tensor_content: bool = False) -> tensor_pb2.TensorProto:
    """An output as TF Serving sends it: typed value lists, or ``tensor_content`` bytes."""
    array = np.asarray(value)
    if array.dtype.name not in TYPED_FIELDS and array.dtype != np.float16:
        # Strings always travel in string_val (and dtypes without a typed list as TF packs them).
        proto: tensor_pb2.TensorProto = tf.make_tensor_proto(array)
        return proto
    proto = tensor_pb2.TensorProto(dtype=tf.dtypes.as_dtype(array.dtype).as_datatype_enum)
    dims = (tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in array.shape)
    proto.tensor_shape.dim.extend(dims)
    if as_tensor_content:  # TF's AsProtoTensorContent: little-endian bytes, scalars too
        proto.tensor_content = array.astype(array.dtype.newbyteorder("<")).tobytes()
        return proto
    flat = array.reshape(-1)
    if array.dtype == np.float16:  # half_val carries the raw 16 bits of each value
        proto.half_val.extend(flat.view(np.uint16).tolist())
        return proto
    if array.dtype.kind == "c":  # real and imaginary parts interleaved
        flat = np.stack([flat.real, flat.imag], axis=-1).reshape(-1)
    getattr(proto, TYPED_FIELDS[array.dtype.name]).extend(flat.tolist())
    return proto
