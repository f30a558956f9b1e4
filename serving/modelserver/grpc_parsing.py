"""gRPC services whose requests are parsed by the handler: a request that is no valid protobuf
is the client's fault (INVALID_ARGUMENT), and a method this server does not implement answers
UNIMPLEMENTED quietly.

grpcio parses a request with the handler's ``request_deserializer`` before the servicer runs;
when that raises (corrupt wire format, a proto3 string of bad UTF-8) it answers INTERNAL
``Exception deserializing request!`` (a server fault, as the client reads it) and logs an
ERROR with a traceback, per call. The generated servicer bases raise ``NotImplementedError``
for the methods a subclass leaves out (Classify, Regress, MultiInference,
HandleReloadConfigRequest), which grpcio logs as ``Exception calling application`` with a
traceback, per call: any client could fill the log. :func:`add_services` registers each
service with the same behaviours, the parse moved into the handler (the same parse, so no
extra cost per call).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError

# (the generated add_*Servicer_to_server, the servicer, the service's descriptor)
Registration = tuple[Callable[[Any, Any], None], Any, ServiceDescriptor]


@dataclass(frozen=True)
class _CallDetails:
    """The part of ``grpc.HandlerCallDetails`` a generic handler's ``service`` reads."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


class _Collector:
    """Stands in for the server when a generated ``add_*_to_server`` registers its handlers."""

    def __init__(self) -> None:
        self.generic: list[Any] = []

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        self.generic.extend(handlers)

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None:
        """Newer generated code registers the same handlers a second way: the generic
        handlers already hold them."""


def add_services(server: grpc.Server, registrations: Sequence[Registration]) -> None:
    """Register each service on ``server`` with request parsing in its handlers.

    Raises ValueError if a method of a service's descriptor has no generated handler.
    """
    for add, servicer, service in registrations:
        collector = _Collector()
        add(servicer, collector)
        handlers = {}
        for method in service.methods:
            details = _CallDetails(f"/{service.full_name}/{method.name}")
            found = [g.service(details) for g in collector.generic]
            handler = next((h for h in found if h is not None), None)
            if handler is None:
                raise ValueError(f"no handler for {details.method}")
            handlers[method.name] = _parsing(handler, method, _implements(servicer, method))
        generic = grpc.method_handlers_generic_handler(service.full_name, handlers)
        server.add_generic_rpc_handlers((generic,))


def _implements(servicer: Any, method: MethodDescriptor) -> bool:
    """Whether a class of the servicer's other than the generated base defines the method."""
    return any(
        method.name in vars(cls)
        for cls in type(servicer).__mro__
        if not cls.__module__.endswith("_pb2_grpc")
    )


def _parsing(handler: Any, method: MethodDescriptor, implemented: bool) -> Any:
    parse = handler.request_deserializer
    name = method.input_type.full_name
    behavior = handler.unary_stream if method.server_streaming else handler.unary_unary

    def run(data: bytes, context: grpc.ServicerContext) -> Any:
        if not implemented:
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method.name} is not implemented by this model server",
            )
        try:
            request = parse(data)
        except DecodeError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request is no valid {name}")
            raise AssertionError("context.abort always raises") from error
        return behavior(request, context)

    if method.client_streaming:
        raise ValueError(f"{method.full_name}: client streaming is not served")
    make = (
        grpc.unary_stream_rpc_method_handler
        if method.server_streaming
        else grpc.unary_unary_rpc_method_handler
    )
    return make(run, request_deserializer=None, response_serializer=handler.response_serializer)
