"""Backend failure -> HTTP status, without the server's raw text; answers for another model."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from serving.gateway.backends.base import VersionSelector
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.errors import BackendError, BackendFailure, backend_to_gateway
from serving.protos import tfs_wire_pb2 as wire
from tests.support.grpc_servers import serve_handlers


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (BackendFailure.UNAVAILABLE, 503),
        (BackendFailure.DEADLINE_EXCEEDED, 504),
        (BackendFailure.INVALID_ARGUMENT, 502),
        (BackendFailure.NOT_FOUND, 404),
        (BackendFailure.INTERNAL, 502),
        (BackendFailure.TOO_LARGE, 413),
    ],
)
def test_backend_failure_mapping_hides_raw_messages(failure, status) -> None:
    error = backend_to_gateway(BackendError(failure, "tensorflow::Status secret text"), 3)
    assert error.status == status
    assert "secret" not in error.message
    assert error.body()["detail"] == []
    assert (error.headers.get("Retry-After") == "3") == (status == 503)


@pytest.mark.parametrize(
    ("server_options", "gateway_limit"),
    [((), 1024), ((("grpc.max_send_message_length", 1024),), 64 * 1024 * 1024)],
    ids=["gateway-receive-limit", "server-send-limit"],
)
def test_an_answer_past_a_message_limit_is_no_client_fault(
    server_options: tuple[tuple[str, int], ...], gateway_limit: int
) -> None:
    """A request within the limits whose answer passes the gateway's ``max_message_bytes``
    or the server's send limit: grpc's RESOURCE_EXHAUSTED 'Received (Sent) message larger
    than max' is the server's answer, not the client's request (a 502, not the 413 of a
    request too large nor a 503 retry)."""
    answer = wire.PredictResponse()
    answer.outputs["scores"].dtype = wire.DT_FLOAT
    answer.outputs["scores"].float_val.extend([0.5] * 4096)

    def predict(request: bytes, context: grpc.ServicerContext) -> bytes:
        return answer.SerializeToString()

    server, target = serve_handlers(
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
        ),
        options=server_options,
    )
    backend = GrpcBackend(target, retry=None, max_message_bytes=gateway_limit)
    try:
        with pytest.raises(BackendError) as raised:
            backend.predict("m", VersionSelector(), {"ids": np.ones((1, 4), np.int32)})
    finally:
        backend.close()
        server.stop(grace=None)
    assert raised.value.failure is BackendFailure.INTERNAL, raised.value
    assert backend_to_gateway(raised.value, 3).status == 502


def test_metadata_for_another_model_is_a_backend_failure() -> None:
    """Found by the adversarial repo pass 7 (as a Predict answer for another model): a relay
    answering GetModelMetadata for profile had qa fit-checked against profile's signature."""

    def metadata(request: bytes, context: grpc.ServicerContext) -> bytes:
        answer = wire.GetModelMetadataResponse(model_spec=wire.ModelSpec(name="profile"))
        return answer.SerializeToString()

    server, target = serve_handlers(
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {"GetModelMetadata": grpc.unary_unary_rpc_method_handler(metadata)},
        )
    )
    backend = GrpcBackend(target, timeout_seconds=5.0, retry=None)
    try:
        with pytest.raises(BackendError) as caught:
            backend.model_metadata("qa", VersionSelector())
    finally:
        backend.close()
        server.stop(grace=None)
    assert caught.value.failure is BackendFailure.INTERNAL
    assert caught.value.message == "metadata for model 'profile', asked for 'qa'"
