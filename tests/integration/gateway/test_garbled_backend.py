"""The gateway under real gunicorn (gevent) behind a relay that forwards to the real model
server until told to answer garbled instead: over REST, HTTP cut, badly chunked, falsely
compressed, or JSON of another shape; over gRPC, messages no TF Serving would send (a version
state without a name, signature bytes that do not parse).

The REST relay answers one request per connection (``Connection: close``), from a thread per
connection in this process; the gRPC relay is a generic handler forwarding bytes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

from serving.gateway.backends.grpc_calls import GET_METADATA, GET_STATUS
from serving.gateway.launcher import RunningGateway, running_gateway
from serving.protos import tfs_wire_pb2 as wire
from tests.support.grpc_servers import serve_handlers
from tests.support.model_server import ModelServerHandle

pytestmark = pytest.mark.slow
QA = {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}
BOUND = 60.0  # seconds: a bound on waits, never a measured figure
DEADLINE = 2.0  # GATEWAY_REQUEST_TIMEOUT_SECONDS of the REST gateway
JSON = b"Content-Type: application/json\r\nConnection: close\r\n"
GARBLED = {
    "bad-chunks": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + JSON + b"\r\nzz\r\n{}",
    "cut-short": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n" + JSON + b"\r\n{}",
    "not-gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n"
    + JSON
    + b"\r\n{}",
    "other-json": b"HTTP/1.1 200 OK\r\nContent-Length: 51\r\n"
    + JSON
    + b'\r\n{"model_version_status": [7], "outputs": {"x": {}}}',
}


class Relay:
    """Forwards each HTTP request to ``upstream``, or answers ``garbled`` when it is set."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.garbled: bytes | None = None
        self.drip_seconds = 0.0  # > 0: the garbled answer's bytes go one at a time, so spaced
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return  # closed at teardown
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection, connection.makefile("rb") as reader:
            connection.settimeout(BOUND)
            method, target, _ = reader.readline().decode().split(" ", 2)
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = reader.read(length)
            garbled = self.garbled
            if garbled is not None:
                self._send(connection, garbled)
                return
            answer = requests.request(
                method,
                self.upstream + target,
                data=body,
                timeout=BOUND,
                headers={"Content-Type": "application/json"},
            )
            head = f"HTTP/1.1 {answer.status_code} -\r\nContent-Length: {len(answer.content)}\r\n"
            connection.sendall(head.encode() + JSON + b"\r\n" + answer.content)

    def _send(self, connection: socket.socket, garbled: bytes) -> None:
        if not self.drip_seconds:
            connection.sendall(garbled)
            return
        head, _, body = garbled.partition(b"\r\n\r\n")
        connection.sendall(head + b"\r\n\r\n")
        try:
            for index in range(len(body)):
                time.sleep(self.drip_seconds)
                connection.sendall(body[index : index + 1])
        except OSError:
            return  # the gateway gave up (its deadline) and closed the connection


@pytest.fixture(scope="module")
def relayed(
    tiny_repo: Path, tiny_model_server: ModelServerHandle
) -> Iterator[tuple[RunningGateway, Relay]]:
    relay = Relay(tiny_model_server.rest_url)
    environment = {
        "GATEWAY_BACKEND": "rest",
        "GATEWAY_REST_URL": relay.url,
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_REQUEST_TIMEOUT_SECONDS": str(DEADLINE),
        "GATEWAY_VERSION_POLL_SECONDS": "600",  # states change on requests only
    }
    try:
        with running_gateway(environment, workers=1, ready_path="/readyz") as gateway:
            yield gateway, relay
    finally:
        relay.listener.close()


@pytest.mark.parametrize("kind", sorted(GARBLED))
def test_a_garbled_answer_is_a_bad_gateway_never_a_500(relayed, kind: str) -> None:
    """Each garbled answer was a 500 'internal error' on every route that called the server
    (requests' ChunkedEncodingError and ContentDecodingError, and a status JSON of another
    shape, escaped the REST backend)."""
    gateway, relay = relayed
    relay.garbled = None
    assert requests.get(f"{gateway.url}/readyz", timeout=BOUND).status_code == 200
    relay.garbled = GARBLED[kind]
    try:
        # The model is routed: the predict call meets the garbled answer.
        answer = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
        assert answer.status_code == 502, answer.text
        assert set(answer.json()) == {"error", "detail"}
        # The status calls meet it too: not ready, still listed.
        ready = requests.get(f"{gateway.url}/readyz", timeout=BOUND)
        assert ready.status_code == 503, ready.text
        assert ready.headers["Retry-After"]
        listing = requests.get(f"{gateway.url}/v1/models", timeout=BOUND)
        assert listing.status_code == 200, listing.text
    finally:
        relay.garbled = None
    recovered = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
    assert recovered.status_code == 200, recovered.text


def test_an_answer_dripped_past_the_deadline_is_a_504(relayed) -> None:
    """The read timeout bounded each receive, not the body: an answer dripped a byte every
    50 ms (300 bytes: 15 s) held the request as long, with a 2 s deadline."""
    gateway, relay = relayed
    assert requests.get(f"{gateway.url}/readyz", timeout=BOUND).status_code == 200
    relay.garbled = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n" + JSON + b"\r\n" + b" " * 300
    relay.drip_seconds = 0.05
    try:
        start = time.monotonic()
        answer = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
        seconds = time.monotonic() - start
        assert answer.status_code == 504, answer.text
        assert set(answer.json()) == {"error", "detail"}
        # The deadline and one receive at most; a generous margin for a loaded machine.
        assert seconds < 3 * DEADLINE, f"answered after {seconds:.1f} s"
    finally:
        relay.garbled, relay.drip_seconds = None, 0.0


def _unnamed_state() -> bytes:
    answer = wire.GetModelStatusResponse()
    status = answer.model_version_status.add(version=1)
    status.state = 99  # type: ignore[assignment]  # no ModelVersionStatus.State has it
    return answer.SerializeToString()


def _unparsable_signatures() -> bytes:
    answer = wire.GetModelMetadataResponse()
    answer.model_spec.version.value = 1
    answer.metadata["signature_def"].value = b"\xff\xff not a SignatureDefMap"
    return answer.SerializeToString()


class GrpcRelay(grpc.GenericRpcHandler):  # type: ignore[misc]
    """Forwards every call's bytes upstream; answers ``garbled[method]`` when it is set."""

    def __init__(self, upstream: str) -> None:
        self.channel = grpc.insecure_channel(upstream)
        self.garbled: dict[str, bytes] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        forward = self.channel.unary_unary(details.method)

        def handle(request: bytes, context: grpc.ServicerContext) -> Any:
            garbled = self.garbled.get(details.method)
            return garbled if garbled is not None else forward(request, timeout=BOUND)

        return grpc.unary_unary_rpc_method_handler(handle)


@pytest.fixture(scope="module")
def grpc_relayed(
    tiny_repo: Path, tiny_model_server: ModelServerHandle
) -> Iterator[tuple[RunningGateway, GrpcRelay]]:
    relay = GrpcRelay(tiny_model_server.grpc_target)
    relay_server, target = serve_handlers(relay, max_workers=8)
    environment = {
        "GATEWAY_BACKEND": "grpc",
        "GATEWAY_GRPC_TARGET": target,
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_VERSION_POLL_SECONDS": "600",
    }
    try:
        with running_gateway(environment, workers=1, ready_path="/readyz") as gateway:
            yield gateway, relay
    finally:
        relay_server.stop(grace=None)
        relay.channel.close()


def test_a_version_state_without_a_name_is_no_500(grpc_relayed) -> None:
    """A status naming a state the protos do not know raised ValueError in State.Name: 500
    on /readyz, /v1/models and every prediction."""
    gateway, relay = grpc_relayed
    relay.garbled = {GET_STATUS: _unnamed_state()}
    try:
        # /readyz asks the status: the version is no longer AVAILABLE, so it is not routed.
        assert requests.get(f"{gateway.url}/readyz", timeout=BOUND).status_code == 503
        answer = requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND)
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        listing = requests.get(f"{gateway.url}/v1/models", timeout=BOUND)
        assert listing.status_code == 200, listing.text
        states = {
            version["state"] for model in listing.json()["models"] for version in model["versions"]
        }
        assert states == {"UNKNOWN"}
    finally:
        relay.garbled = {}
    assert requests.post(f"{gateway.url}/v1/qa", json=QA, timeout=BOUND).status_code == 200


def test_signatures_that_do_not_parse_are_no_500(grpc_relayed) -> None:
    """GetModelMetadata bytes that are no SignatureDefMap raised protobuf's DecodeError: a 500
    for the listing (which asks the routed version's signature)."""
    gateway, relay = grpc_relayed
    relay.garbled = {GET_METADATA: _unparsable_signatures()}
    try:
        listing = requests.get(f"{gateway.url}/v1/models/qa", timeout=BOUND)
        assert listing.status_code == 200, listing.text
        assert listing.json()["error"] == "metadata: backend internal"
        assert listing.json()["signature"] is None
    finally:
        relay.garbled = {}
