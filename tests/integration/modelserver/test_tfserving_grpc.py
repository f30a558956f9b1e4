"""TF Serving's gRPC test expectations, from its own test harness.

Sources (tensorflow/serving at 9d981c5, Apache-2.0):
  base.py    tensorflow_serving/model_servers/test_util/tensorflow_model_server_test_base.py
  test.py    tensorflow_serving/model_servers/tensorflow_model_server_test.py
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_service_pb2_grpc

from tests.integration.modelserver.helpers import predict_request


@pytest.fixture(scope="module")
def stub(tfs):
    with grpc.insecure_channel(tfs.grpc_target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def half_plus_request(name: str, specify_output: bool = True) -> predict_pb2.PredictRequest:
    """base.py:251-276: x as one float_val, no shape; output_filter ['y'] if specified."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].dtype = tf.float32.as_datatype_enum
    request.inputs["x"].float_val.append(2.0)
    if specify_output:
        request.output_filter.append("y")
    return request


@pytest.mark.parametrize(
    ("name", "expected"), [("half_plus_two", 3.0), ("half_plus_three", 4.0)]
)  # test.py:283 and :291
@pytest.mark.parametrize("specify_output", [True, False])
def test_verify_predict_request(stub, name, expected, specify_output):
    result = stub.Predict(half_plus_request(name, specify_output), timeout=30)
    # base.py:281-284, and test.py:367-369 for the model spec
    assert "y" in result.outputs
    assert result.outputs["y"].dtype == tf.float32.as_datatype_enum
    assert len(result.outputs["y"].float_val) == 1
    assert result.outputs["y"].float_val[0] == expected
    assert result.model_spec.name == name
    assert result.model_spec.signature_name == "serving_default"
    assert result.model_spec.version.value == 123


def test_shape_is_left_to_the_graph(stub):
    # issue 13 item 2: x is declared [None, 1]; TF Serving runs a [3] tensor all the same
    request = predict_request("half_plus_two", {"x": np.array([2.0, 3.0, 4.0], np.float32)})
    result = stub.Predict(request, timeout=30)
    assert list(result.outputs["y"].float_val) == [3.0, 3.5, 4.0]
    assert [dim.size for dim in result.outputs["y"].tensor_shape.dim] == [3]


def test_string_outputs_travel_in_string_val(stub):
    request = predict_request("strings", {"text": np.array([b"ab"], dtype=object)})
    result = stub.Predict(request, timeout=30)
    assert list(result.outputs["upper"].string_val) == [b"AB"]
    assert list(result.outputs["length"].int_val) == [2]


@pytest.mark.parametrize(
    ("signature", "alias", "dtype", "value"),
    [("int8", "small", tf.int8, 300), ("int8", "small", tf.int8, -129)],
)
def test_narrow_integers_out_of_range_are_invalid_argument(stub, signature, alias, dtype, value):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ids"
    request.model_spec.signature_name = signature
    request.inputs[alias].dtype = dtype.as_datatype_enum
    request.inputs[alias].tensor_shape.dim.add(size=1)
    request.inputs[alias].int_val.append(value)
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_wider_integer_dtype_is_rejected_not_narrowed(stub):
    request = predict_request("ids", {"ids": np.array([4294967329, 4294967302], np.int64)})
    with pytest.raises(grpc.RpcError) as raised:
        stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Expects arg[0] to be int32 but int64 is provided" in raised.value.details()


def test_in_range_ints_round_trip(stub):
    request = predict_request("ids", {"ids": np.array([33, 6], np.int32)})
    assert list(stub.Predict(request, timeout=30).outputs["ids_out"].int_val) == [33, 6]


def test_classify_is_unimplemented(stub, local_only):
    # LOCAL: TF Serving implements Classify (test.py:165); this server answers UNIMPLEMENTED
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "half_plus_two"
    with pytest.raises(grpc.RpcError) as raised:
        stub.Classify(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert raised.value.details() == "Classify is not implemented by this model server"
