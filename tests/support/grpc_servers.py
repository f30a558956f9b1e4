"""Real gRPC servers for tests: fakes of TF Serving's services and relays in front of one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc


def serve_handlers(
    *handlers: grpc.GenericRpcHandler,
    max_workers: int = 2,
    options: tuple[tuple[str, int], ...] = (),
) -> tuple[grpc.Server, str]:
    """A started gRPC server on a free loopback port answering with ``handlers``; it and its
    target (``127.0.0.1:PORT``). ``options``: grpc server options (channel arguments). The
    caller stops it (``server.stop(grace=None)``)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    server.add_generic_rpc_handlers(handlers)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


# What a relay forwards (TF Serving's calls the gateway makes), by service.
RELAYED = {
    "tensorflow.serving.ModelService": ("GetModelStatus",),
    "tensorflow.serving.PredictionService": ("GetModelMetadata", "Predict"),
}
Forward = Callable[[bytes], bytes]
# (method name, request bytes, the call's context, the upstream call) -> answer bytes
Hook = Callable[[str, bytes, grpc.ServicerContext, Forward], bytes]


@contextmanager
def relay(
    upstream_target: str,
    hook: Hook | None = None,
    max_workers: int = 2,
    options: tuple[tuple[str, int], ...] = (),
) -> Iterator[str]:
    """A real gRPC server in front of ``upstream_target`` (a model server) for the block: each
    of :data:`RELAYED`'s calls is answered by ``hook(method, request, context, forward)``
    (default: forwarded as it is, 30 s deadline); yields its target."""
    upstream = grpc.insecure_channel(upstream_target)

    def handler(service: str, method: str) -> grpc.RpcMethodHandler:
        call = upstream.unary_unary(f"/{service}/{method}")

        def forward(request: bytes) -> bytes:
            return bytes(call(request, timeout=30))

        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            return hook(method, request, context, forward) if hook else forward(request)

        return grpc.unary_unary_rpc_method_handler(handle)

    handlers = [
        grpc.method_handlers_generic_handler(
            service, {method: handler(service, method) for method in methods}
        )
        for service, methods in RELAYED.items()
    ]
    server, target = serve_handlers(*handlers, max_workers=max_workers, options=options)
    try:
        yield target
    finally:
        server.stop(grace=None)
        upstream.close()
