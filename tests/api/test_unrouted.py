"""A model without a routed version is a 503 that says why, without the server's own text.

Found by a new-user trial: a dead model server and a version that failed its spec check were
both answered "model has no available version". The cases: the server is unreachable, it has
no version loaded, a loaded version's check is pending (the server was busy); every loaded
version failed the check is in test_unfit_versions.py. The server's text goes to the log with
the request id.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import pytest

from serving.gateway.backends import VersionStatus
from serving.gateway.errors import BackendError, BackendFailure
from serving.processes import free_port
from serving.protos import tfs_wire_pb2 as wire
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import serve_handlers

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
SERVER_TEXT = "tensorflow::Status at /models/secret/qa/1: out of memory"
State = wire.ModelVersionStatus.State


def _status_server(state: wire.ModelVersionStatus.State.ValueType) -> tuple[grpc.Server, str]:
    """A real gRPC server: GetModelStatus says version 1 is in ``state`` (with the server's
    error text); GetModelMetadata is UNAVAILABLE, so a fit check cannot run."""

    def status(request: bytes, context: grpc.ServicerContext) -> bytes:
        version = wire.ModelVersionStatus(
            version=1, state=state, status=wire.StatusProto(error_message=SERVER_TEXT)
        )
        return wire.GetModelStatusResponse(model_version_status=[version]).SerializeToString()

    def metadata(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAVAILABLE, SERVER_TEXT)
        return b""

    return serve_handlers(
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {"GetModelStatus": grpc.unary_unary_rpc_method_handler(status)},
        ),
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {"GetModelMetadata": grpc.unary_unary_rpc_method_handler(metadata)},
        ),
    )


def _ask(repo: Path, target: str) -> tuple[int, dict[str, object], str]:
    with gateway_app(repo, target, retries=0, request_timeout_seconds=2.0) as app:
        response = app.test_client().post("/v1/qa", json=QA, headers={"X-Request-ID": "why-1"})
    assert "Retry-After" in response.headers
    body = response.get_json()
    text = response.get_data(as_text=True)
    assert "tensorflow" not in text and "/models/secret" not in text and "127.0.0.1" not in text
    return response.status_code, body, body["error"]


def test_an_unreachable_model_server(tiny_repo: Path, gateway_log: io.StringIO) -> None:
    status, _, message = _ask(tiny_repo, f"127.0.0.1:{free_port()}")
    assert status == 503 and message == "the model server is unreachable; retry later"
    lines = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    logged = [line for line in lines if line.get("request_id") == "why-1"]
    assert any("qa: 503 the model server is unreachable" in line["message"] for line in logged)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (State.LOADING, "the model server has no version of model 'qa' loaded; retry later"),
        (State.END, "the model server has no version of model 'qa' loaded; retry later"),
        (
            State.AVAILABLE,
            "model 'qa' version 1 is loaded but not yet checked against its serving spec "
            "(the model server was busy); retry later",
        ),
    ],
)
def test_nothing_loaded_or_not_checked_yet(
    tiny_repo: Path,
    gateway_log: io.StringIO,
    state: wire.ModelVersionStatus.State.ValueType,
    expected: str,
) -> None:
    server, target = _status_server(state)
    try:
        status, body, message = _ask(tiny_repo, target)
    finally:
        server.stop(grace=None)
    assert status == 503 and message == expected
    if state != State.AVAILABLE:
        assert body["detail"] == [{"version": 1, "state": State.Name(state)}]
    logged = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    assert any(
        line.get("request_id") == "why-1" and SERVER_TEXT in line["message"] for line in logged
    )


def test_a_routed_version_retired_with_no_successor_is_503_not_404(
    app_factory, monkeypatch
) -> None:
    # Found by probing a hot swap: the model server unloaded version 1 as version 2 (unfit)
    # loaded; one unpinned request in that window got 404 "the requested model version is
    # not served", blaming a client that pinned nothing. The next ones got the 503.
    app = app_factory()
    client = app.test_client()
    assert client.post("/v1/qa", json=QA).status_code == 200  # version 1 routed
    backend = app.extensions["gateway"].backend

    def retired(*args: object, **kwargs: object) -> None:
        raise BackendError(BackendFailure.NOT_FOUND, "Servable not found for request")

    monkeypatch.setattr(backend, "predict", retired)
    monkeypatch.setattr(backend, "model_status", lambda *a, **k: [VersionStatus(1, "END", "")])
    response = client.post("/v1/qa", json=QA)
    assert response.status_code == 503, response.json
    assert response.headers["Retry-After"] == "1"
    assert "no version of model 'qa' loaded" in response.json["error"]
    pinned = client.post("/v1/qa?version=1", json=QA)
    assert pinned.status_code == 404  # a pin the server does not serve stays the client's 404


def test_a_model_the_server_does_not_know_names_the_config_poll(tiny_repo: Path) -> None:
    # Found by newuser7: a model exported while the model server ran without
    # --model_config_file_poll_wait_seconds (0: the config is read once) was never loaded;
    # /readyz and GET /v1/models said only "backend not_found".
    def status(request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.NOT_FOUND, "Could not find any versions of model qa")
        return b""

    server, target = serve_handlers(
        grpc.method_handlers_generic_handler(
            "tensorflow.serving.ModelService",
            {"GetModelStatus": grpc.unary_unary_rpc_method_handler(status)},
        )
    )
    try:
        with gateway_app(tiny_repo, target, retries=0, request_timeout_seconds=2.0) as app:
            client = app.test_client()
            ready = client.get("/readyz")
            listed = client.get("/v1/models/qa")
    finally:
        server.stop(grace=None)
    assert ready.status_code == 503
    reasons = {item["model"]: item["reason"] for item in ready.get_json()["detail"]}
    for reason in (reasons["qa"], listed.get_json()["error"]):
        assert reason.startswith("backend not_found: the model server has no version of this")
        assert "--model_config_file_poll_wait_seconds" in reason
