"""gRPC conformance: answers equal the SavedModel's, errors carry TF Serving's codes."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tests.integration.modelserver.helpers import (
    PROFILE_INPUTS,
    QA_INPUTS,
    predict_request,
    reference_outputs,
)


def test_predict_matches_saved_model(prediction_stub, reference_repo):
    response = prediction_stub.Predict(predict_request("qa", QA_INPUTS), timeout=30)
    expected = reference_outputs(reference_repo, "qa", QA_INPUTS)
    assert response.model_spec.name == "qa"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"
    assert set(response.outputs) == {"answer_probs"}
    proto = response.outputs["answer_probs"]
    assert proto.dtype == tf.float32.as_datatype_enum
    # TF Serving's default: typed value lists (tensor_content only with the flag)
    assert proto.float_val and not proto.tensor_content
    np.testing.assert_allclose(tf.make_ndarray(proto), expected["answer_probs"], atol=1e-5)


def test_output_filter_and_version_choice(prediction_stub, reference_repo):
    request = predict_request("profile", PROFILE_INPUTS, version=1, output_filter=("age",))
    response = prediction_stub.Predict(request, timeout=30)
    assert set(response.outputs) == {"age"}
    expected = reference_outputs(reference_repo, "profile", PROFILE_INPUTS)["age"]
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["age"]), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("request_args", "code", "fragment"),
    [
        ({"name": "nope", "inputs": QA_INPUTS}, grpc.StatusCode.NOT_FOUND, "nope"),
        ({"name": "qa", "inputs": QA_INPUTS, "version": 99}, grpc.StatusCode.NOT_FOUND, "99"),
        (
            {"name": "qa", "inputs": {"article_ids": QA_INPUTS["article_ids"]}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "question_ids",
        ),
        (
            {"name": "qa", "inputs": {**QA_INPUTS, "extra_ids": QA_INPUTS["question_ids"]}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "extra_ids",
        ),
        (
            {"name": "qa", "inputs": {**QA_INPUTS, "question_ids": np.ones((2, 3), np.float32)}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "",
        ),
        (
            {"name": "qa", "inputs": QA_INPUTS, "signature_name": "nope"},
            grpc.StatusCode.FAILED_PRECONDITION,
            "nope",
        ),
        (
            {"name": "qa", "inputs": QA_INPUTS, "output_filter": ("nope",)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "nope",
        ),
    ],
    ids=["unknown-model", "unknown-version", "missing", "extra", "dtype", "signature", "filter"],
)
def test_predict_errors(prediction_stub, request_args, code, fragment):
    args = dict(request_args)
    request = predict_request(args.pop("name"), args.pop("inputs"), **args)
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(request, timeout=30)
    assert raised.value.code() == code
    assert fragment in raised.value.details()


def test_unknown_label_is_rejected(prediction_stub):
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(predict_request("qa", QA_INPUTS, label="canary"), timeout=30)
    # TF Serving answers INVALID_ARGUMENT "Unrecognized servable version label: canary".
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "canary" in raised.value.details()


def test_metadata_packs_signature_def_map(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "similarity"
    response = prediction_stub.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_map)
    serving = signature_map.signature_def["serving_default"]
    assert set(serving.inputs) == {"left_ids", "right_ids"}
    assert set(serving.outputs) == {"score"}
    assert serving.inputs["left_ids"].dtype == tf.int32.as_datatype_enum


def test_metadata_needs_a_supported_field(prediction_stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["nope"])
    request.model_spec.name = "qa"
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.GetModelMetadata(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_model_status(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "qa"
    response = model_stub.GetModelStatus(request, timeout=30)
    [status] = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


def test_model_status_unknown_model(model_stub):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as raised:
        model_stub.GetModelStatus(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_service(channel, local_only):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
