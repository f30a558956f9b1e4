"""The project's wire messages: compiled files are current and match TF Serving's bytes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.gateway.backends import VersionSelector
from serving.gateway.backends.grpc_backend import model_spec
from serving.gateway.tensors import from_tensor_proto, to_tensor_proto
from serving.protos import build
from serving.protos import tfs_wire_pb2 as wire

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.int8, np.uint8, np.bool_, np.float16]


def test_committed_protos_are_current(tmp_path: Path) -> None:
    # In a subprocess: protoc's C++ runtime crashes in a process that has loaded TensorFlow.
    subprocess.run(
        [sys.executable, "-m", "serving.protos.build", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=build.ROOT,
        env={**os.environ, "PYTHONPATH": str(build.ROOT)},
    )
    for source in build.proto_files():
        for suffix in ("_pb2.py", "_pb2.pyi"):
            name = source.stem + suffix
            fresh = (tmp_path / "serving" / "protos" / name).read_text()
            committed = (build.PROTO_DIR / name).read_text()
            assert fresh == committed, f"{name} is stale: run `make protos`"


@pytest.fixture(scope="module")
def official():
    tf = pytest.importorskip("tensorflow")
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        predict_pb2,
    )

    return tf, predict_pb2, get_model_metadata_pb2, get_model_status_pb2


@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_content_both_ways(official, dtype) -> None:
    tf, predict_pb2, _, _ = official
    values = (
        (np.arange(6).reshape(2, 3) % 2 == 0)
        if dtype is np.bool_
        else np.arange(6, dtype=dtype).reshape(2, 3)
    )
    ours = wire.PredictRequest(model_spec=model_spec("qa", VersionSelector(version=3)))
    ours.inputs["x"].CopyFrom(to_tensor_proto(values))
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.name == "qa"
    assert theirs.model_spec.version.value == 3
    assert theirs.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(theirs.inputs["x"]), values)
    back = wire.PredictRequest.FromString(theirs.SerializeToString())
    np.testing.assert_array_equal(from_tensor_proto(back.inputs["x"]), values)


@pytest.mark.parametrize("dtype", DTYPES)
def test_typed_value_lists_from_official(official, dtype) -> None:
    tf, predict_pb2, _, _ = official
    values = np.array([[1, 0, 1]], dtype=dtype)
    # tf.make_tensor_proto(..., use typed lists) is what many clients and servers send.
    response = predict_pb2.PredictResponse()
    tensor = tf.make_tensor_proto(values)
    tensor.ClearField("tensor_content")
    field = {
        np.float32: "float_val", np.float64: "double_val", np.int32: "int_val",
        np.int64: "int64_val", np.int8: "int_val", np.uint8: "int_val", np.bool_: "bool_val",
        np.float16: "half_val",
    }[dtype]  # fmt: skip
    flat = values.reshape(-1)
    tensor.ClearField(field)
    getattr(tensor, field).extend(
        flat.view(np.uint16).tolist() if dtype is np.float16 else flat.tolist()
    )
    response.outputs["y"].CopyFrom(tensor)
    ours = wire.PredictResponse.FromString(response.SerializeToString())
    np.testing.assert_array_equal(from_tensor_proto(ours.outputs["y"]), values)


def test_string_tensors_both_ways(official) -> None:
    tf, predict_pb2, _, _ = official
    values = np.array([b"kitchen", "garden"], dtype=object)
    ours = wire.PredictResponse()
    ours.outputs["s"].CopyFrom(to_tensor_proto(values))
    theirs = predict_pb2.PredictResponse.FromString(ours.SerializeToString())
    assert list(tf.make_ndarray(theirs.outputs["s"])) == [b"kitchen", b"garden"]
    official_tensor = tf.make_tensor_proto(np.array([b"a", b"b"]))
    theirs.outputs["t"].CopyFrom(official_tensor)
    back = wire.PredictResponse.FromString(theirs.SerializeToString())
    assert list(from_tensor_proto(back.outputs["t"])) == [b"a", b"b"]


def test_one_value_fills_the_shape(official) -> None:
    tf, _, _, _ = official
    tensor = wire.TensorProto.FromString(
        tf.make_tensor_proto(2.5, shape=[2, 2]).SerializeToString()
    )
    np.testing.assert_array_equal(from_tensor_proto(tensor), np.full((2, 2), 2.5, np.float32))


def test_version_label_spec(official) -> None:
    _, predict_pb2, _, _ = official
    ours = wire.PredictRequest(model_spec=model_spec("qa", VersionSelector(label="stable")))
    theirs = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.version_label == "stable"
    assert not theirs.model_spec.HasField("version")


def test_metadata_and_status_from_official(official) -> None:
    tf, _, metadata_pb2, status_pb2 = official
    from tensorflow.core.protobuf import meta_graph_pb2

    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["article_ids"].name = "serving_default_article_ids:0"
    signature.inputs["article_ids"].dtype = tf.int32.as_datatype_enum
    signature.inputs["article_ids"].tensor_shape.dim.add(size=-1)
    signature.outputs["answer_probs"].dtype = tf.float32.as_datatype_enum
    signature_map = metadata_pb2.SignatureDefMap()
    signature_map.signature_def["serving_default"].CopyFrom(signature)
    response = metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "qa"
    response.model_spec.version.value = 2
    response.metadata["signature_def"].Pack(signature_map)
    ours = wire.GetModelMetadataResponse.FromString(response.SerializeToString())
    assert ours.metadata["signature_def"].type_url.endswith("tensorflow.serving.SignatureDefMap")
    parsed = wire.SignatureDefMap.FromString(ours.metadata["signature_def"].value)
    info = parsed.signature_def["serving_default"].inputs["article_ids"]
    assert (info.dtype, [dim.size for dim in info.tensor_shape.dim]) == (wire.DT_INT32, [-1])
    assert ours.model_spec.version.value == 2

    status = status_pb2.GetModelStatusResponse()
    entry = status.model_version_status.add(version=4, state=30)
    entry.status.error_code = 5
    entry.status.error_message = "gone"
    parsed_status = wire.GetModelStatusResponse.FromString(status.SerializeToString())
    item = parsed_status.model_version_status[0]
    assert (item.version, item.state, item.status.error_code) == (
        4,
        wire.ModelVersionStatus.AVAILABLE,
        wire.NOT_FOUND,
    )
    request = wire.GetModelStatusRequest(model_spec=wire.ModelSpec(name="qa"))
    assert (
        status_pb2.GetModelStatusRequest.FromString(request.SerializeToString()).model_spec.name
        == "qa"
    )


def test_bfloat16_outputs_from_official(official) -> None:
    # A mixed_bfloat16 head of a SavedModel saved without the export: "unsupported dtype
    # DT_BFLOAT16", so the version could not be answered over gRPC.
    tf, _, _, _ = official
    values = np.array([[0.5, 0.333984375, -69632.0]], np.float32)  # exact in bfloat16
    tensor = tf.make_tensor_proto(tf.constant(values, tf.bfloat16).numpy())
    as_bytes = wire.TensorProto.FromString(tensor.SerializeToString())
    np.testing.assert_array_equal(from_tensor_proto(as_bytes), values)
    bits = np.frombuffer(tensor.tensor_content, "<u2").tolist()
    tensor.ClearField("tensor_content")
    tensor.half_val.extend(bits)  # TF Serving's typed list: the raw 16 bits per int32
    as_list = wire.TensorProto.FromString(tensor.SerializeToString())
    np.testing.assert_array_equal(from_tensor_proto(as_list), values)
