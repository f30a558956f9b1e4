"""gRPC calls from a real gunicorn gevent worker: they yield to the hub, keep their deadline,
and only UNAVAILABLE is retried, with the gateway's call pool, with gevent's hub pool, and
with gunicorn's own gevent class named in ``GATEWAY_WORKER_CLASS``.

Between the gateway (one gevent worker) and the local model server sits a gRPC proxy in this
process that forwards every call's bytes, and by the request id (``x-request-id``) holds a
Predict until its caller gives up (``hold-``), fails its first attempt UNAVAILABLE
(``flaky-``) or refuses it INVALID_ARGUMENT (``reject-``). One gateway and proxy per worker
class serve both tests: each test uses its own request ids, and a held call ends at the
gateway's deadline (the proxy keeps only its handler thread until teardown).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from serving.gateway.backends.grpc_calls import PREDICT
from serving.gateway.launcher import RunningGateway, running_gateway
from tests.support.grpc_servers import serve_handlers
from tests.support.model_server import ModelServerHandle

pytestmark = pytest.mark.slow
QA = {"article": "Mary moved to the kitchen. John went to the garden.", "question": "Where?"}
DEADLINE_SECONDS = 3  # the gateway's GATEWAY_REQUEST_TIMEOUT_SECONDS; the held test waits it
BOUND = 60.0  # seconds; a bound on waits, never an assertion


class Proxy(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Forwards every call's bytes upstream; holds, fails or refuses Predicts by request id."""

    def __init__(self, upstream: str) -> None:
        self.channel = grpc.insecure_channel(upstream)
        self.attempts: Counter[str] = Counter()
        self.held = threading.Event()  # a hold- Predict arrived
        self.hold_ended = threading.Event()  # ... and its caller gave up (deadline)
        self.arrived_while_held: list[str] = []
        self.release = threading.Event()  # set at teardown only

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        forward = self.channel.unary_unary(details.method)

        def handle(request: bytes, context: grpc.ServicerContext) -> Any:
            if details.method != PREDICT:
                return forward(request, timeout=BOUND)
            request_id = dict(context.invocation_metadata()).get("x-request-id", "")
            self.attempts[request_id] += 1
            if self.held.is_set() and not self.hold_ended.is_set():
                self.arrived_while_held.append(request_id)
            if request_id.startswith("hold-"):
                context.add_callback(self.hold_ended.set)
                self.held.set()
                self.release.wait(BOUND)
                context.abort(grpc.StatusCode.UNAVAILABLE, "released")
            if request_id.startswith("flaky-") and self.attempts[request_id] == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "first attempt fails")
            if request_id.startswith("reject-"):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused")
            return forward(request, timeout=BOUND)

        return grpc.unary_unary_rpc_method_handler(handle)


@pytest.fixture(
    scope="module",
    params=[
        ("gevent", "true"),
        ("gevent", "false"),
        ("gunicorn.workers.ggevent.GeventWorker", "true"),  # gunicorn's own: the hub's pool
    ],
    ids=["call-pool", "hub-pool", "gunicorn-gevent-class"],
)
def gateway(
    request: pytest.FixtureRequest, tiny_repo: Path, tiny_model_server: ModelServerHandle
) -> Iterator[tuple[RunningGateway, Proxy]]:
    proxy = Proxy(tiny_model_server.grpc_target)
    proxy_server, target = serve_handlers(proxy, max_workers=16)
    environment = {
        "GATEWAY_BACKEND": "grpc",
        "GATEWAY_GRPC_TARGET": target,
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_WORKER_CLASS": request.param[0],
        "GATEWAY_GRPC_CALL_POOL": request.param[1],
        "GATEWAY_REQUEST_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        "GATEWAY_RETRIES": "1",
    }
    try:
        with running_gateway(environment, workers=1, ready_path="/readyz") as running:
            yield running, proxy
    finally:
        proxy.release.set()
        proxy_server.stop(grace=None)
        proxy.channel.close()


def _post(url: str, request_id: str) -> requests.Response:
    headers = {"X-Request-ID": request_id}
    return requests.post(f"{url}/v1/qa", json=QA, headers=headers, timeout=BOUND)


def _in_thread(call: Callable[[], requests.Response]) -> futures.Future[requests.Response]:
    executor = futures.ThreadPoolExecutor(max_workers=1)
    try:
        return executor.submit(call)
    finally:
        executor.shutdown(wait=False)


def test_a_call_held_at_the_model_server_blocks_no_other_request(gateway) -> None:
    running, proxy = gateway
    held = _in_thread(lambda: _post(running.url, "hold-1"))
    assert proxy.held.wait(BOUND)
    # The one worker answers another request while its first call still waits on the backend.
    other = _post(running.url, "other-1")
    assert other.status_code == 200, other.text
    assert proxy.arrived_while_held == ["other-1"]
    # The held call ends at the gateway's deadline: 504, and a deadline is not retried.
    timed_out = held.result(timeout=BOUND)
    assert timed_out.status_code == 504, timed_out.text
    assert timed_out.json()["error"]
    assert proxy.attempts["hold-1"] == 1


def test_only_unavailable_is_retried(gateway) -> None:
    running, proxy = gateway
    flaky = _post(running.url, "flaky-1")
    assert flaky.status_code == 200, flaky.text
    assert proxy.attempts["flaky-1"] == 2
    rejected = _post(running.url, "reject-1")
    assert rejected.status_code == 502, rejected.text
    assert proxy.attempts["reject-1"] == 1
