"""TF Serving over gRPC, with the project's own wire messages (no TensorFlow import)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc
import numpy.typing as npt
from google.protobuf.message import DecodeError, Message

from serving.gateway.backends.base import (
    Arrays,
    ModelMetadata,
    RetryPolicy,
    TensorSpec,
    VersionSelector,
    VersionStatus,
    seconds_left,
)
from serving.gateway.backends.grpc_calls import (
    FAILURES,
    Stubs,
    UnaryCall,
    connect,
    size_failure,
)
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.pid import current_pid
from serving.gateway.tensors import TensorConversionError, fill_tensor_proto, from_tensor_proto
from serving.protos import tfs_wire_pb2 as wire


def model_spec(model: str, selector: VersionSelector) -> wire.ModelSpec:
    """A ModelSpec naming the model, the signature and the pinned version or label."""
    spec = wire.ModelSpec(name=model, signature_name=selector.signature_name)
    if selector.version is not None:
        spec.version.value = selector.version
    elif selector.label:
        spec.version_label = selector.label
    return spec


class GrpcBackend:
    """One channel per process, created on first use (after gunicorn forks its workers)."""

    def __init__(
        self,
        target: str,
        timeout_seconds: float = 5.0,
        retry: RetryPolicy | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.target = target
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self.max_message_bytes = max_message_bytes
        self._lock = threading.Lock()
        self._stubs: Stubs | None = None
        self._pid = 0

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Arrays:
        """Call ``PredictionService/Predict`` and decode every output tensor (``timeout_seconds``:
        :meth:`serving.gateway.backends.base.Backend.predict`).

        An answer for another version than the pinned one, another model or signature than
        asked (when the answer names them), or with an output that is not floating point,
        raises BackendError INTERNAL (a 502): found by the adversarial repo
        pass 5, a DT_INT32 output of ones was answered as probabilities of 1.0 (the REST
        backend reads JSON numbers as float32 and cannot tell).
        """
        request = wire.PredictRequest(model_spec=model_spec(model, selector))
        for key, value in inputs.items():
            fill_tensor_proto(request.inputs[key], value)
        response: wire.PredictResponse = self._call("predict", request, request_id, timeout_seconds)
        answered = response.model_spec.version
        # The ids were made by the pinned version's tokenizer: another version's answer is wrong.
        if (
            selector.version is not None
            and response.model_spec.HasField("version")
            and answered.value != selector.version
        ):
            raise BackendError(
                BackendFailure.INTERNAL,
                f"answered for version {answered.value}, asked for {selector.version}",
            )
        # Another model's or signature's answer is another computation on these ids (a relay
        # or proxy routing wrongly; found by the adversarial repo pass 7: it was answered as
        # this model's when its shapes fitted). An empty name is a server that does not say.
        for kind, asked, got in (
            ("model", model, response.model_spec.name),
            ("signature", selector.signature_name, response.model_spec.signature_name),
        ):
            if asked and got and got != asked:
                raise BackendError(
                    BackendFailure.INTERNAL, f"answered for {kind} {got!r}, asked for {asked!r}"
                )
        outputs = response.outputs
        try:
            # By key: the protobuf map's items() is collections.abc's Python iterator.
            decoded = {key: from_tensor_proto(outputs[key]) for key in outputs}
        except TensorConversionError as error:
            raise BackendError(BackendFailure.INTERNAL, str(error)) from error
        # Heads read floats (the fit check saw DT_FLOAT/HALF/BFLOAT16/DOUBLE outputs in the
        # metadata); an integer or string tensor is a server answering wrongly, not values.
        wrong = sorted(key for key, value in decoded.items() if value.dtype.kind != "f")
        if wrong:
            raise BackendError(BackendFailure.INTERNAL, f"outputs {wrong} are not floating point")
        return decoded

    def model_status(self, model: str, request_id: str | None = None) -> list[VersionStatus]:
        """Call ``ModelService/GetModelStatus``."""
        request = wire.GetModelStatusRequest(model_spec=wire.ModelSpec(name=model))
        response: wire.GetModelStatusResponse = self._call("status", request, request_id)
        return [
            VersionStatus(
                version=status.version,
                state=_state_name(status.state),
                error=status.status.error_message,
            )
            for status in response.model_version_status
        ]

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        """Call ``GetModelMetadata`` and unpack its ``signature_def`` Any: the selector's
        signature (empty inputs and outputs if the version has none of that name)."""
        request = wire.GetModelMetadataRequest(
            model_spec=model_spec(model, selector), metadata_field=["signature_def"]
        )
        response: wire.GetModelMetadataResponse = self._call("metadata", request, request_id)
        if response.model_spec.name and response.model_spec.name != model:  # as predict's
            raise BackendError(
                BackendFailure.INTERNAL,
                f"metadata for model {response.model_spec.name!r}, asked for {model!r}",
            )
        signatures = wire.SignatureDefMap()
        try:
            signatures.ParseFromString(response.metadata["signature_def"].value)
        except DecodeError as error:  # bytes that are no SignatureDefMap: a bad gateway
            raise BackendError(BackendFailure.INTERNAL, f"bad metadata: {error}") from error
        found, version = signatures.signature_def, response.model_spec.version.value
        names = tuple(sorted(found))
        # Asked with `in` first: indexing a protobuf message map inserts a default entry.
        if selector.signature_name not in found:
            return ModelMetadata(name=model, version=version, signatures=names)
        signature = found[selector.signature_name]
        return ModelMetadata(
            name=model,
            version=version,
            inputs={key: _spec(info) for key, info in signature.inputs.items()},
            outputs={key: _spec(info) for key, info in signature.outputs.items()},
            signatures=names,
        )

    def close(self) -> None:
        """Close this process's channel."""
        with self._lock:
            if self._stubs is not None and self._pid == current_pid():
                self._stubs.channel.close()
            self._stubs = None

    def _call(
        self,
        method: str,
        request: Message,
        request_id: str | None,
        timeout_seconds: float | None = None,
    ) -> Any:
        call: UnaryCall = getattr(self._get_stubs(), method)
        metadata = (("x-request-id", request_id),) if request_id else ()
        # One deadline for the call and its retries: each attempt gets the time left.
        deadline = time.monotonic() + (timeout_seconds or self.timeout_seconds)

        def attempt() -> Any:
            try:
                return call(request, timeout=seconds_left(deadline), metadata=metadata)
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
                details = error.details() if isinstance(error, grpc.Call) else str(error)
                if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    too_large = size_failure(details or "", request)
                    if too_large is not None:
                        raise too_large from error
                failure = FAILURES.get(code, BackendFailure.INTERNAL)
                retryable = code == grpc.StatusCode.UNAVAILABLE
                raise BackendError(failure, f"{code.name}: {details}", retryable) from error

        return self.retry.run(attempt, deadline)

    def _get_stubs(self) -> Stubs:
        stubs = self._stubs
        if stubs is not None and self._pid == current_pid():
            return stubs  # every call asks: no lock once connected in this process
        with self._lock:
            # A channel must not cross a fork: a worker builds its own on first use.
            if self._stubs is None or self._pid != current_pid():
                self._stubs = connect(self.target, self.max_message_bytes)
                self._pid = current_pid()
            return self._stubs


def _spec(info: wire.TensorInfo) -> TensorSpec:
    return TensorSpec(
        dtype=wire.DataType.Name(info.dtype) if info.dtype in wire.DataType.values() else "",
        shape=tuple(dim.size for dim in info.tensor_shape.dim),
    )


def _state_name(state: wire.ModelVersionStatus.State.ValueType) -> str:
    """TF Serving's name of a version state; ``UNKNOWN`` (its value 0's name) for a value
    this gateway's protos do not name (a garbled answer, or a newer server's state): it was a
    ValueError, a 500 on every route that asked the status."""
    if state in wire.ModelVersionStatus.State.values():
        return wire.ModelVersionStatus.State.Name(state)
    return wire.ModelVersionStatus.State.Name(wire.ModelVersionStatus.UNKNOWN)
