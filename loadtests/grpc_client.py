"""A small TF Serving ``PredictionService/Predict`` client for direct backend calls.

It speaks TF Serving's wire format with the gateway's own compiled messages and tensor
converters (``serving/protos``, ``serving/gateway/tensors.py``), so a locust process does not
import TensorFlow. Unlike the gateway's backend it never retries: a load test counts every
failure.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import numpy as np
import numpy.typing as npt

from serving import contract
from serving.gateway.backends import VersionSelector
from serving.gateway.backends.grpc_backend import model_spec
from serving.gateway.backends.grpc_calls import PREDICT
from serving.gateway.tensors import from_tensor_proto, to_tensor_proto
from serving.protos import tfs_wire_pb2

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
Outputs = dict[str, npt.NDArray[np.float32]]


class PredictClient:
    """One channel and stub per user; each call has a deadline."""

    def __init__(self, target: str, timeout_seconds: float = 30.0) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self.channel = grpc.insecure_channel(target, options=options)
        self.call = self.channel.unary_unary(
            PREDICT,
            request_serializer=tfs_wire_pb2.PredictRequest.SerializeToString,
            response_deserializer=tfs_wire_pb2.PredictResponse.FromString,
        )
        self.timeout_seconds = timeout_seconds

    def request(
        self, name: str, version: int, inputs: Mapping[str, npt.NDArray[np.int32]]
    ) -> tfs_wire_pb2.PredictRequest:
        """A PredictRequest for a model version's serving signature."""
        request = tfs_wire_pb2.PredictRequest(
            model_spec=model_spec(name, VersionSelector(version=version))
        )
        for key, array in inputs.items():
            request.inputs[key].CopyFrom(to_tensor_proto(array))
        return request

    def predict(self, request: tfs_wire_pb2.PredictRequest) -> Outputs:
        """Send a request and return its outputs as arrays."""
        response = self.call(request, timeout=self.timeout_seconds)
        return {
            key: from_tensor_proto(value).astype(np.float32)
            for key, value in response.outputs.items()
        }

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()


def check_outputs(name: str, outputs: Outputs, batch: int) -> str | None:
    """``None`` when a model's outputs have the contract's names, batch size and ranges."""
    for key in contract.SIGNATURES[name].outputs:
        if key not in outputs:
            return f"output {key!r} missing"
        values = outputs[key]
        if values.shape[:1] != (batch,):
            return f"output {key!r} has shape {values.shape} for batch {batch}"
        if not np.isfinite(values).all():
            return f"output {key!r} is not finite"
        if key != "age" and not ((values >= 0.0) & (values <= 1.0)).all():
            return f"output {key!r} outside [0, 1]"
    return None
