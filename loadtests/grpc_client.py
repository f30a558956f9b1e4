"""A small TF Serving ``PredictionService/Predict`` client for direct backend calls.

It speaks TF Serving's wire format with the gateway's own compiled messages
(``serving/protos``, same field numbers as TF Serving's), so a locust process does not
import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import numpy as np
import numpy.typing as npt

from serving import contract
from serving.protos import tfs_wire_pb2

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
DT_FLOAT = tfs_wire_pb2.DT_FLOAT  # the same numbers as TensorFlow's types.proto
DT_INT32 = tfs_wire_pb2.DT_INT32
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
Outputs = dict[str, npt.NDArray[np.float32]]


def tensor_proto(array: npt.NDArray[np.int32]) -> tfs_wire_pb2.TensorProto:
    """An int32 TensorProto with its bytes in ``tensor_content`` (as the gateway sends it)."""
    proto = tfs_wire_pb2.TensorProto(
        dtype=DT_INT32, tensor_content=np.ascontiguousarray(array).tobytes()
    )
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    return proto


def to_array(proto: tfs_wire_pb2.TensorProto) -> npt.NDArray[np.float32]:
    """A float TensorProto as a numpy array (``tensor_content`` or ``float_val``)."""
    if proto.dtype != DT_FLOAT:
        raise ValueError(f"expected DT_FLOAT output, got dtype {proto.dtype}")
    shape = [dim.size for dim in proto.tensor_shape.dim]
    if proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype="<f4")
    else:
        values = np.asarray(proto.float_val, dtype=np.float32)
    return values.reshape(shape).astype(np.float32)


class PredictClient:
    """One channel and stub per user; each call has a deadline."""

    def __init__(self, target: str, timeout_seconds: float = 30.0) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        self.channel = grpc.insecure_channel(target, options=options)
        self.call = self.channel.unary_unary(
            PREDICT_METHOD,
            request_serializer=tfs_wire_pb2.PredictRequest.SerializeToString,
            response_deserializer=tfs_wire_pb2.PredictResponse.FromString,
        )
        self.timeout_seconds = timeout_seconds

    def request(
        self, name: str, version: int, inputs: Mapping[str, npt.NDArray[np.int32]]
    ) -> tfs_wire_pb2.PredictRequest:
        """A PredictRequest for a model version's serving signature."""
        request = tfs_wire_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.version.value = version
        request.model_spec.signature_name = contract.SIGNATURE_NAME
        for key, array in inputs.items():
            request.inputs[key].CopyFrom(tensor_proto(array))
        return request

    def predict(self, request: tfs_wire_pb2.PredictRequest) -> Outputs:
        """Send a request and return its outputs as arrays."""
        response = self.call(request, timeout=self.timeout_seconds)
        return {key: to_array(value) for key, value in response.outputs.items()}

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
