"""The model server's gRPC server: its settings (TF Serving's flags), the three services
(PredictionService, ModelService, health) registered on one ``grpc.server``, and health."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    model_service_pb2,
    model_service_pb2_grpc,
    prediction_service_pb2,
    prediction_service_pb2_grpc,
)

from serving.modelserver.grpc_parsing import Registration, add_services
from serving.modelserver.grpc_service import (
    MAX_MESSAGE_BYTES,
    ModelStatusServicer,
    PredictionServicer,
)
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.numbers import parse_int_flag


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
