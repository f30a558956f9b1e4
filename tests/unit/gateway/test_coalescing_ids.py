"""The request ids a merged call forwards fit a gRPC server's metadata limit.

A merged call forwarded every member's id comma-separated: 130 requests with 128-character
ids (1..128 printable characters are kept as given) made a 16.8 KB ``x-request-id``, and
every gRPC server refused the call (RESOURCE_EXHAUSTED past 16 KB; at random past 8 KB), so
each member called again alone: the merge was lost and the model server logged no id.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from serving.gateway.exchange import MAX_REQUEST_ID_LENGTH, forwarded_ids
from tests.support.grpc_servers import serve_handlers
from tests.unit.gateway.test_coalescing import (
    WAIT_SECONDS,
    RowBackend,
    hold_first,
    patient,
    rows,
    wait_queued,
)

MEMBERS = 130
METHOD = "/test.Echo/Call"


class EchoMetadata(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A real gRPC server (grpc's default limits) answering with its ``x-request-id``."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata: dict[str, str] = dict(context.invocation_metadata())
            return metadata["x-request-id"].encode()

        return grpc.unary_unary_rpc_method_handler(echo)


@pytest.fixture
def echo_channel() -> Iterator[grpc.Channel]:
    server, target = serve_handlers(EchoMetadata())
    try:
        with grpc.insecure_channel(target) as channel:
            yield channel
    finally:
        server.stop(grace=None)


def _long_id(index: int) -> str:
    return f"{index:04d}".ljust(MAX_REQUEST_ID_LENGTH, "x")


def test_a_merged_calls_ids_reach_a_grpc_server(echo_channel: grpc.Channel) -> None:
    backend = RowBackend()
    coalescer = patient(backend, MEMBERS, 1)
    with ThreadPoolExecutor(MEMBERS + 1) as pool:
        release, first = hold_first(coalescer, backend, pool)
        futures = []
        for index in range(MEMBERS):
            futures.append(pool.submit(coalescer.predict, "m", 1, 0, rows(1), _long_id(index)))
            wait_queued(coalescer, "m", 1, index + 1)
        release.set()
        for future in [first, *futures]:
            future.result(WAIT_SECONDS)
    (merged,) = [call[3] for call in backend.calls if call[2] == MEMBERS]
    call = echo_channel.unary_unary(METHOD)
    echoed = call(b"", metadata=(("x-request-id", merged),), timeout=WAIT_SECONDS).decode()
    assert echoed == merged
    # Whole ids first, in order; then how many were left out.
    *kept, rest = merged.split(",")
    assert kept == [_long_id(index) for index in range(len(kept))]
    assert rest == f"+{MEMBERS - len(kept)}"


def test_ids_that_fit_are_forwarded_whole() -> None:
    assert forwarded_ids(["a", "b-2"]) == "a,b-2"
    assert forwarded_ids([]) == ""
