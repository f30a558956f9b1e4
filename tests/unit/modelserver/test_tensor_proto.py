"""gRPC tensors: typed value lists by default, tensor_content on request, range checks."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2

from serving.modelserver.errors import ServingError
from serving.modelserver.tensor_proto import decode_input, encode_output, fill_output


@pytest.mark.parametrize(
    ("array", "field"),
    [
        (np.array([[0.5, 1.5]], np.float32), "float_val"),
        (np.array([1.0, 2.0]), "double_val"),
        (np.array([1, -2], np.int32), "int_val"),
        (np.array([1, 2], np.uint8), "int_val"),
        (np.array([2**40], np.int64), "int64_val"),
        (np.array([True, False]), "bool_val"),
        (np.array([1.5], np.float16), "half_val"),
    ],
)
def test_outputs_use_typed_lists_by_default_and_decode_back(array, field):
    proto = encode_output(array)
    assert not proto.tensor_content
    assert len(getattr(proto, field)) == array.size
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)


@pytest.mark.parametrize(
    "array", [np.array([[0.5, 1.5]], np.float32), np.float32(3.0), np.array([7], np.int8)]
)
def test_tensor_content_when_asked(array):
    proto = encode_output(array, as_tensor_content=True)
    assert proto.tensor_content and not proto.float_val
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)


def test_strings_travel_in_string_val():
    proto = encode_output(np.array([b"a", b"b"], dtype=object))
    assert list(proto.string_val) == [b"a", b"b"]


@pytest.mark.parametrize(("dtype", "value"), [(tf.int8, 300), (tf.uint8, -1), (tf.int16, 70000)])
def test_narrow_ints_out_of_range_are_invalid_argument(dtype, value):
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    proto.tensor_shape.dim.add(size=1)
    proto.int_val.append(value)
    with pytest.raises(ServingError, match="out of range"):
        decode_input("ids", proto)


@pytest.mark.parametrize("dims", [[2**31, 2**31], [1, 2**21], [2**40]])
def test_a_huge_shape_filled_from_one_value_is_invalid_argument(dims):
    """TF would broadcast the one value to every declared element: gigabytes from a few bytes."""
    proto = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.int_val.append(7)
    with pytest.raises(ServingError, match="declares"):
        decode_input("ids", proto)


def test_a_negative_dimension_is_invalid_argument():
    proto = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum)
    proto.tensor_shape.dim.add(size=-3)
    proto.int_val.append(7)
    with pytest.raises(ServingError, match="negative"):
        decode_input("ids", proto)


def test_a_small_fill_and_a_large_carried_tensor_still_decode():
    small = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum)
    small.tensor_shape.dim.add(size=3)
    small.int_val.append(5)
    np.testing.assert_array_equal(decode_input("ids", small), [5, 5, 5])
    large = tf.make_tensor_proto(np.ones((2, 2**20), np.int32))
    assert decode_input("ids", large).shape == (2, 2**20)


OUTPUTS: list[np.ndarray] = [
    np.array([[0.5, 1.5], [2.5, -1.0]], np.float32),
    np.array(np.float32(3.0)),  # a scalar
    np.zeros((0, 4), np.float32),
    np.array([1, -2], np.int32),
    np.array([[2**40]], np.int64),
    np.array([True, False]),
    np.array([1.5], np.float16),
    np.array([1 + 2j], np.complex64),
    np.array([b"a", b"b"], dtype=object),
    np.array([[0.25, 4.0]], np.dtype(">f4")),  # big-endian: the general path
]


@pytest.mark.parametrize(
    ("array", "as_tensor_content"),
    [(array, False) for array in OUTPUTS]
    + [(array, True) for array in OUTPUTS if array.dtype != object],  # strings: string_val
    ids=lambda value: str(np.asarray(value).dtype) if isinstance(value, np.ndarray) else None,
)
def test_fill_output_writes_the_message_encode_output_makes(array, as_tensor_content):
    expected = encode_output(array, as_tensor_content)
    for _ in range(2):  # the second time from the cached dtype+shape header
        filled = tensor_pb2.TensorProto()
        fill_output(filled, array, as_tensor_content)
        assert filled == expected
        assert filled.SerializeToString(deterministic=True) == expected.SerializeToString(
            deterministic=True
        )


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float32, np.float64])
def test_tensor_content_inputs_decode_as_make_ndarray_does(dtype):
    proto = tf.make_tensor_proto(np.arange(12, dtype=dtype).reshape(3, 4))
    assert proto.tensor_content
    decoded = decode_input("ids", proto)
    expected = tf.make_ndarray(proto)
    np.testing.assert_array_equal(decoded, expected)
    assert decoded.dtype == expected.dtype and decoded.shape == (3, 4)
    decoded[0, 0] = 5  # writable: its own memory, as make_ndarray's copy


@pytest.mark.parametrize(
    ("dims", "content", "match"),
    [
        ([2, 3], np.arange(5, dtype=np.int32).tobytes(), "tensor parsing error: ids"),
        ([2], b"\x00\x01\x02", "tensor parsing error: ids"),  # not a whole int32
        ([-1, 2], np.arange(4, dtype=np.int32).tobytes(), "negative"),
        ([2**21], np.arange(4, dtype=np.int32).tobytes(), "declares"),
    ],
)
def test_malformed_tensor_content_keeps_its_error(dims, content, match):
    proto = tensor_pb2.TensorProto(dtype=tf.int32.as_datatype_enum, tensor_content=content)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    with pytest.raises(ServingError, match=match) as raised:
        decode_input("ids", proto)
    assert raised.value.code.name == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "proto",
    [
        tensor_pb2.TensorProto(dtype=tf.variant.as_datatype_enum),  # no numpy dtype: KeyError
        tensor_pb2.TensorProto(dtype=tf.resource.as_datatype_enum),
        # 70 dimensions: numpy holds 64 (the tensor_content path reshaped: ValueError, INTERNAL)
        tensor_pb2.TensorProto(
            dtype=tf.int32.as_datatype_enum,
            tensor_shape={"dim": [{"size": 1}] * 70},
            tensor_content=np.int32(1).tobytes(),
        ),
        # values numpy cannot hold in the dtype: OverflowError (INTERNAL)
        tensor_pb2.TensorProto(dtype=tf.float16.as_datatype_enum, half_val=[70000]),
        tensor_pb2.TensorProto(dtype=tf.bfloat16.as_datatype_enum, half_val=[-1]),
        tensor_pb2.TensorProto(dtype=tf.qint8.as_datatype_enum, int_val=[300]),
        tensor_pb2.TensorProto(dtype=tf.quint16.as_datatype_enum, int_val=[-1]),
    ],
    ids=["variant", "resource", "rank-70-content", "half", "bfloat16", "qint8", "quint16"],
)
def test_tensors_numpy_cannot_hold_are_invalid_argument(proto):
    with pytest.raises(ServingError, match="tensor parsing error: x") as raised:
        decode_input("x", proto)
    assert raised.value.code.name == "INVALID_ARGUMENT"


def string_fill(rows: int, value: bytes) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=tf.string.as_datatype_enum, string_val=[value])
    proto.tensor_shape.dim.add(size=rows)
    return proto


def test_a_string_fill_may_not_multiply_a_long_string():
    """64 KB on the wire declared 8192 copies of itself: 512 MB in the server."""
    with pytest.raises(ServingError, match="would add 536805376 bytes") as raised:
        decode_input("text", string_fill(8192, b"x" * 65536))
    assert raised.value.code.name == "INVALID_ARGUMENT"
    assert decode_input("text", string_fill(8192, b"short")).tolist() == [b"short"] * 8192
