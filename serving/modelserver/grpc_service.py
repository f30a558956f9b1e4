"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.modelserver.errors import (
    INTERNAL_MESSAGE,
    ServingError,
    invalid_argument,
    logged_request_id,
)
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.predict import predict
from serving.modelserver.tensor_proto import decode_input, fill_output

LOG = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
SIGNATURE_DEF_FIELD = "signature_def"
# A status message travels percent-encoded in the grpc-message trailer (up to 12 bytes for a
# character); past a client's metadata limit (grpc's default: 8 KB soft, 16 KB hard) it gets
# RESOURCE_EXHAUSTED 'Stream removed' instead of the status. Messages echo client strings.
MAX_DETAILS_BYTES = 4096
Reply = TypeVar("Reply")


def spec_choice(model_spec: Any) -> tuple[int | None, str]:
    """The (version, label) a ModelSpec asks for; (None, '') means the latest version."""
    choice = model_spec.WhichOneof("version_choice")
    if choice == "version":
        return int(model_spec.version.value), ""
    if choice == "version_label":
        return None, str(model_spec.version_label)
    return None, ""


def servable_choice(model_spec: Any) -> tuple[int | None, str]:
    """:func:`spec_choice` for a call that runs a servable (Predict, GetModelMetadata); a
    ``version_label`` set to ``""`` is INVALID_ARGUMENT as TF Serving's
    ``ServerCore::GetModelVersionForLabel`` finds no such label (it was read as no label:
    the latest version answered, where TF Serving refuses the request)."""
    version, label = spec_choice(model_spec)
    if not label and model_spec.WhichOneof("version_choice") == "version_label":
        raise invalid_argument("Unrecognized servable version label: ")
    return version, label


def _deadline(context: grpc.ServicerContext) -> float | None:
    """The call's deadline as a ``time.monotonic()`` time, None when the client set none.

    TF Serving passes a gRPC deadline on to the session run (``RunOptions.timeout_in_ms``);
    here it stops a request split into batches between two of them."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _guarded(
    manager: ModelManager,
    metrics: ServerMetrics,
    api: str,
    request: Any,
    context: grpc.ServicerContext,
    handler: Callable[[], Reply],
) -> Reply:
    """Run a handler; turn ServingError into the gRPC status, and count the request.

    A failed request is counted without a version, and under its model's name only if that
    model is configured: both come from the client, and each new pair of labels is a new
    series kept for the server's life (a client naming random models grew it without end).
    """
    started = time.perf_counter()
    name = request.model_spec.name
    version: int | None = None
    code = grpc.StatusCode.OK
    try:
        reply = handler()
        version = getattr(getattr(reply, "model_spec", None), "version", None)
        version = version.value if version is not None else None
        return reply
    except ServingError as error:
        code = error.code
        context.abort(error.code, status_details(error.message))
        raise AssertionError("context.abort always raises") from error
    except Exception as error:  # a bug must still answer with a status, and be counted
        code = grpc.StatusCode.INTERNAL
        # The request id (the gateway's x-request-id; a merged call's ids comma-separated)
        # finds this line from the gateway's 502 and access line.
        LOG.exception("%s failed (request id %s)", api, logged_request_id(_request_id(context)))
        context.abort(code, INTERNAL_MESSAGE)  # the exception's text may name server paths
        raise AssertionError("context.abort always raises") from error
    finally:
        if code != grpc.StatusCode.OK and name not in manager.model_names():
            name = ""
        metrics.observe_request(
            name,
            "" if version is None else str(version),
            api,
            code.name,
            time.perf_counter() - started,
        )


def _request_id(context: grpc.ServicerContext) -> str | None:
    """The call's ``x-request-id`` metadata, if sent."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-request-id" and isinstance(value, str):
            return value
    return None


def status_details(message: str) -> str:
    """``message`` cut (with '...') to at most :data:`MAX_DETAILS_BYTES` percent-encoded bytes:
    printable ASCII but '%' is one byte, other bytes of its UTF-8 three (grpc's encoding)."""
    if len(message) <= MAX_DETAILS_BYTES // 12:
        return message
    size = 0
    for index, char in enumerate(message):
        encoded = char.encode("utf-8", "surrogatepass")
        size += sum(1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3 for byte in encoded)
        if size > MAX_DETAILS_BYTES - 3:
            return message[:index] + "..."
    return message


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    """Predict and GetModelMetadata over the ModelManager."""

    def __init__(
        self, manager: ModelManager, metrics: ServerMetrics, tensor_content: bool = False
    ) -> None:
        self._manager = manager
        self._metrics = metrics
        self._tensor_content = tensor_content  # --enable_serialization_as_tensor_content

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """TF Serving's PredictionService/Predict."""
        return _guarded(
            *(self._manager, self._metrics, "grpc_predict", request, context),
            lambda: self._predict(request, _deadline(context)),
        )

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """TF Serving's PredictionService/GetModelMetadata (signature_def only)."""
        return _guarded(
            *(self._manager, self._metrics, "grpc_metadata", request, context),
            lambda: self._metadata(request),
        )

    def _predict(self, request: Any, deadline: float | None) -> Any:
        version, label = servable_choice(request.model_spec)
        inputs = {alias: decode_input(alias, proto) for alias, proto in request.inputs.items()}
        result = predict(
            self._manager,
            request.model_spec.name,
            inputs,
            version=version,
            label=label,
            signature_name=request.model_spec.signature_name,
            output_filter=list(request.output_filter),
            deadline=deadline,
        )
        response = predict_pb2.PredictResponse()
        response.model_spec.name = result.name
        response.model_spec.version.value = result.version
        response.model_spec.signature_name = result.signature_name
        for alias, value in result.outputs.items():
            fill_output(response.outputs[alias], value, self._tensor_content)
        return response

    def _metadata(self, request: Any) -> Any:
        fields = list(request.metadata_field)
        if not fields:
            raise invalid_argument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in fields:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        version, label = servable_choice(request.model_spec)
        state = self._manager.resolve(request.model_spec.name, version, label)
        assert state.servable is not None
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in state.servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = state.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response


def model_status_response(manager: ModelManager, name: str, version: int | None) -> Any:
    """A GetModelStatusResponse for a model (and optionally one version)."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in manager.statuses(name, version):
        entry = response.model_version_status.add()
        entry.version = state.version
        entry.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        entry.status.error_code = state.error_code
        entry.status.error_message = state.error_message
    return response


class ModelStatusServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    """ModelService/GetModelStatus (HandleReloadConfigRequest stays UNIMPLEMENTED)."""

    def __init__(self, manager: ModelManager, metrics: ServerMetrics) -> None:
        self._manager = manager
        self._metrics = metrics

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """TF Serving's ModelService/GetModelStatus."""

        def handle() -> Any:
            if not request.HasField("model_spec"):
                raise invalid_argument("Missing ModelSpec")
            version, label = spec_choice(request.model_spec)
            if label:
                version = self._manager.resolve(request.model_spec.name, None, label).version
            return model_status_response(self._manager, request.model_spec.name, version)

        return _guarded(self._manager, self._metrics, "grpc_status", request, context, handle)
