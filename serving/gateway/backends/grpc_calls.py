"""The gRPC side of :class:`serving.gateway.backends.grpc_backend.GrpcBackend`: TF Serving's
method paths, the channel and its methods, and what a failed call's status means for the
gateway (:class:`serving.gateway.errors.BackendFailure`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf.message import Message

from serving.gateway.errors import BackendError, BackendFailure
from serving.protos import tfs_wire_pb2 as wire

PREDICT = "/tensorflow.serving.PredictionService/Predict"
GET_METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"

FAILURES: dict[grpc.StatusCode, BackendFailure] = {
    grpc.StatusCode.UNAVAILABLE: BackendFailure.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: BackendFailure.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: BackendFailure.DEADLINE_EXCEEDED,
    grpc.StatusCode.INVALID_ARGUMENT: BackendFailure.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION: BackendFailure.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE: BackendFailure.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND: BackendFailure.NOT_FOUND,
}
UnaryCall = Callable[..., Any]
# grpc core's words for a message past a max_*_message_length (message_size_filter), with a
# "CLIENT: " / "SERVER: " prefix in newer releases (1.60+) and none in older ones and in
# TF Serving's C++ server: "Sent message larger than max (2000 vs. 500)".
SIZE_LIMIT = re.compile(
    r"(?P<way>Sent|Received) message larger than max \((?P<size>\d+) vs\. (?P<max>\d+)\)"
)


@dataclass(frozen=True)
class Stubs:
    """A channel and its unary methods (one set per process: a channel must not cross a fork)."""

    channel: grpc.Channel
    predict: UnaryCall
    metadata: UnaryCall
    status: UnaryCall


def connect(target: str, max_message_bytes: int) -> Stubs:
    """An insecure channel to ``target`` (messages up to ``max_message_bytes`` each way,
    reconnecting within a second after the model server restarts) and its three methods."""
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Reconnect quickly after the model server restarts (default backoff reaches 120 s).
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        ("grpc.enable_retries", 0),
    ]
    channel = grpc.insecure_channel(target, options=options)

    def method(path: str, request: type[Message], response: type[Message]) -> UnaryCall:
        return cast(
            UnaryCall,
            channel.unary_unary(
                path,
                # The message class's own (C) method: no Python frame per call.
                request_serializer=request.SerializeToString,
                response_deserializer=response.FromString,
            ),
        )

    return Stubs(
        channel=channel,
        predict=method(PREDICT, wire.PredictRequest, wire.PredictResponse),
        metadata=method(GET_METADATA, wire.GetModelMetadataRequest, wire.GetModelMetadataResponse),
        status=method(GET_STATUS, wire.GetModelStatusRequest, wire.GetModelStatusResponse),
    )


def size_failure(details: str, request: Message) -> BackendError | None:
    """The failure of a call past a gRPC message size limit; None for another
    RESOURCE_EXHAUSTED (a tensor the server could not allocate, a quota).

    The request past the gateway's own send limit ("Sent") or the server's receive limit
    ("Received") is TOO_LARGE (a 413 naming the limit): it was a 503 "retry later", and
    the same request fails alike every time. An answer past the server's send limit or
    the gateway's receive limit is INTERNAL (a 502): the server's answer, which the client
    neither sees nor bounds. grpc names the message's size: the request's serialized size
    tells the two apart (the words alone do not: both sides say "Sent" and "Received").
    """
    found = SIZE_LIMIT.search(details)
    if found is None:
        return None
    if int(found["size"]) != request.ByteSize():
        return BackendError(BackendFailure.INTERNAL, details)
    if found["way"] == "Sent":
        name = "max_message_bytes"
    else:
        name = "model_server_max_receive_message_length"
    return BackendError(BackendFailure.TOO_LARGE, details, limit=(name, int(found["max"])))
