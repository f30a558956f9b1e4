"""TF Serving's gRPC API: PredictionService (Predict, GetModelMetadata) and ModelService."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from serving.modelserver.errors import (
    INTERNAL_MESSAGE,
    ServingError,
    invalid_argument,
    logged_request_id,
)
from serving.modelserver.grpc_parsing import Registration, add_services
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.predict import predict
from serving.modelserver.tensor_proto import decode_input, fill_output
from serving.numbers import parse_int_flag

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


@dataclass(frozen=True)
class GrpcSettings:
    """How the gRPC server listens and encodes (TF Serving's flags of the same names)."""

    host: str = "127.0.0.1"
    port: int = 8500
    socket_path: str = ""  # --grpc_socket_path: also listen on this UNIX socket
    max_threads: int = 64
    channel_arguments: tuple[tuple[str, str | int], ...] = ()  # --grpc_channel_arguments
    tensor_content: bool = False  # --enable_serialization_as_tensor_content


def parse_channel_arguments(text: str) -> tuple[tuple[str, str | int], ...]:
    """``key=value,key=value`` as TF Serving reads it; integer values become ints."""
    arguments: list[tuple[str, str | int]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"grpc channel argument is not key=value: {item!r}")
        try:
            arguments.append((key, parse_int_flag(value)))
        except ValueError:
            arguments.append((key, value))
    return tuple(arguments)


def build_grpc_server(
    manager: ModelManager, metrics: ServerMetrics, settings: GrpcSettings
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A gRPC server with the three services and health; returns it and its bound TCP port."""
    options: list[tuple[str, str | int]] = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        *settings.channel_arguments,
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_threads), options=options
    )
    health_servicer = health.HealthServicer()
    # Requests parsed in the handlers: a corrupt one is INVALID_ARGUMENT (grpc_parsing).
    registrations: list[Registration] = [
        (
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server,
            PredictionServicer(manager, metrics, settings.tensor_content),
            prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"],
        ),
        (
            model_service_pb2_grpc.add_ModelServiceServicer_to_server,
            ModelStatusServicer(manager, metrics),
            model_service_pb2.DESCRIPTOR.services_by_name["ModelService"],
        ),
        (
            health_pb2_grpc.add_HealthServicer_to_server,
            health_servicer,
            health_pb2.DESCRIPTOR.services_by_name["Health"],
        ),
    ]
    add_services(server, registrations)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    bound = server.add_insecure_port(f"{host}:{settings.port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{settings.port}")
    if settings.socket_path:
        server.add_insecure_port(f"unix:{settings.socket_path}")
    return server, bound, health_servicer


def set_serving(health_servicer: health.HealthServicer, serving: bool) -> None:
    """Report SERVING (or NOT_SERVING) for the server and its two services."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in ("", "tensorflow.serving.PredictionService", "tensorflow.serving.ModelService"):
        health_servicer.set(service, status)
