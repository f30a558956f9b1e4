"""The gRPC handlers' guard: what a client hears of a bug, and status messages that fit."""

from __future__ import annotations

import urllib.parse

import grpc
import pytest
from tensorflow_serving.apis import predict_pb2

from serving.modelserver.errors import INTERNAL_MESSAGE
from serving.modelserver.grpc_service import MAX_DETAILS_BYTES, _guarded, status_details
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics


class AbortingContext:
    """What _guarded needs of a grpc.ServicerContext: abort raises, as grpc's does."""

    def abort(self, code, details):
        self.code, self.details = code, details
        raise grpc.RpcError(details)


def test_a_bug_answers_internal_without_its_text():
    """The exception's text (a server path here) reached the client in the gRPC details."""
    metrics = ServerMetrics()
    manager = ModelManager([], metrics, poll_seconds=0)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "qa"
    context = AbortingContext()

    def handler():
        raise FileNotFoundError("/srv/secret/models/qa/1/variables")

    with pytest.raises(grpc.RpcError):
        _guarded(manager, metrics, "grpc_predict", request, context, handler)
    assert context.code == grpc.StatusCode.INTERNAL
    assert context.details == INTERNAL_MESSAGE and "/srv" not in context.details


@pytest.mark.parametrize("text", ["x" * 10_000, "é" * 10_000, "%\n" * 5_000, "short"])
def test_status_details_fit_the_trailer(text):
    details = status_details(text)
    encoded = urllib.parse.quote(details.encode(), safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~")
    assert len(encoded) <= MAX_DETAILS_BYTES
    assert details == text if text == "short" else details.endswith("...")
