"""The gRPC handlers' guard: what a client hears of a bug, and status messages that fit."""

from __future__ import annotations

import logging
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

    def __init__(self, metadata=()):
        self.metadata = metadata

    def invocation_metadata(self):
        return self.metadata

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


def _failed_call(request_id: str, caplog: pytest.LogCaptureFixture) -> logging.LogRecord:
    """The log record of a Predict call that hit a bug, sent with ``x-request-id``."""
    metrics = ServerMetrics()
    manager = ModelManager([], metrics, poll_seconds=0)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "qa"
    context = AbortingContext((("user-agent", "grpc-python"), ("x-request-id", request_id)))

    def handler():
        raise RuntimeError("a bug")

    with (
        caplog.at_level(logging.ERROR, logger="serving.modelserver.grpc_service"),
        pytest.raises(grpc.RpcError),
    ):
        _guarded(manager, metrics, "grpc_predict", request, context, handler)
    (record,) = caplog.records
    return record


def test_a_bug_is_logged_with_the_request_id(caplog):
    # The gateway forwards its request id (a merged call: its members' ids, comma-separated)
    # so its 502 can be found in this log; the line named no request.
    record = _failed_call("gw-1,gw-2", caplog)
    assert "'gw-1,gw-2'" in record.getMessage() and record.exc_info


def test_a_client_request_id_cannot_split_the_log_line(caplog):
    message = _failed_call("x\n2026-01-01 INFO forged \x1b[2J", caplog).getMessage()
    assert "\n" not in message and "\x1b" not in message
