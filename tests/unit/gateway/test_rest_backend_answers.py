"""The REST backend reads TF Serving's predict answers; one it cannot read is the server's fault."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from serving.gateway.backends import VersionSelector, rest_backend
from serving.gateway.backends.rest_backend import RestBackend
from serving.gateway.errors import BackendError, BackendFailure

INPUTS = {"ids": np.array([[1, 2]], dtype=np.int32)}


@pytest.fixture
def answering() -> Iterator[Any]:
    """Start a real HTTP server that answers every POST with the JSON the test sets."""
    answer: dict[str, Any] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(answer["body"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def backend(body: Any) -> RestBackend:
        answer["body"] = body
        return RestBackend(f"http://127.0.0.1:{server.server_address[1]}")

    yield backend
    server.shutdown()
    server.server_close()


def test_a_readable_answer_is_float32_arrays(answering) -> None:
    outputs = answering({"outputs": {"p": [[0.25, 0.75]]}}).predict("m", VersionSelector(), INPUTS)
    assert outputs["p"].dtype == np.float32 and outputs["p"].tolist() == [[0.25, 0.75]]


@pytest.mark.parametrize(
    "outputs",
    [{"p": [[0.1, 0.2], [0.3]]}, {"p": [["a", "b"]]}, {"p": [{"x": 1}]}],
    ids=["ragged", "strings", "objects"],
)
def test_an_answer_that_is_no_float_tensor_is_a_backend_failure(answering, outputs) -> None:
    # It was numpy's ValueError, out of the backend: a 500 "internal error" of the gateway
    # instead of the 502 of a model server that answered what the gRPC backend refuses too.
    with pytest.raises(BackendError) as raised:
        answering({"outputs": outputs}).predict("m", VersionSelector(), INPUTS)
    assert raised.value.failure is BackendFailure.INTERNAL


def test_a_body_past_the_model_servers_limit_is_too_large_naming_it() -> None:
    """The local model server's REST 413 (a body past its 256 MB) was INTERNAL, a 502 telling
    the client the server failed: it is the request's size, a 413 naming the limit."""
    answer = b'{"error": "The request body is larger than 268435456 bytes"}\n'
    with pytest.raises(BackendError) as raised:
        rest_backend.decode_answer(413, answer)
    assert raised.value.failure is BackendFailure.TOO_LARGE
    assert raised.value.limit == ("model_server_max_body_bytes", 268435456)


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[1, 2]", b"\xff"], ids=str)
def test_a_200_that_is_no_json_object_is_internal(body: bytes) -> None:
    """It was read as ``{"error": ...}`` and used: a model status with no versions at all
    (``model_version_status`` missing), where the server answered something else."""
    with pytest.raises(BackendError) as raised:
        rest_backend.decode_answer(200, body)
    assert raised.value.failure is BackendFailure.INTERNAL
