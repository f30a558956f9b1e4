"""Real gRPC servers for tests: fakes of TF Serving's services and relays in front of one."""

from __future__ import annotations

from concurrent import futures

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
