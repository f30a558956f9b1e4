"""A request past a gRPC message size limit is the client's 413 naming the limit.

Known-left item of the hostile passes: a model input larger than the model server's receive
limit (``--grpc_channel_arguments=grpc.max_receive_message_length=N``, TF Serving's too) was
RESOURCE_EXHAUSTED, answered as a 503 "retry later", though the same request fails alike
every time and only a smaller one can pass. So was one past the gateway's own
``max_message_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.gateway.app import create_app
from serving.gateway.backends.grpc_backend import GrpcBackend
from tests.api.conftest import gateway_app, gateway_settings
from tests.support.grpc_servers import relay
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import close_app

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
# Past one short qa instance's model input (~200 bytes), below 32 long instances'.
RECEIVE_LIMIT = 1024
LONG = {"article": "Mary went to the kitchen. " * 40, "question": "Where is Mary?"}
MANY = {"instances": [LONG] * 32}


@pytest.fixture
def limited_relay(model_server: ModelServerHandle) -> Iterator[str]:
    """A real gRPC server relaying to the session's model server, taking messages of at most
    :data:`RECEIVE_LIMIT` bytes (grpc core refuses larger ones before any handler runs)."""
    options = (("grpc.max_receive_message_length", RECEIVE_LIMIT),)
    with relay(model_server.grpc_target, options=options) as target:
        yield target


def _limit_of(response_json: dict[str, object]) -> object:
    detail = response_json["detail"]
    assert isinstance(detail, list) and len(detail) == 1
    assert detail[0]["loc"] == ["body"] and detail[0]["type"] == "limit_exceeded"
    return detail[0]["limit"]


def test_a_request_past_the_model_servers_receive_limit_is_a_413_naming_it(
    tiny_repo: Path, limited_relay: str
) -> None:
    with gateway_app(tiny_repo, limited_relay, models=["qa"], retries=0) as app:
        client = app.test_client()
        assert client.post("/v1/qa", json=QA).status_code == 200  # one instance fits
        response = client.post("/v1/models/qa:predict", json=MANY)
        assert response.status_code == 413, response.get_json()
        assert "Retry-After" not in response.headers
        body = response.get_json()
        assert "RESOURCE_EXHAUSTED" not in body["error"] and "vs." not in body["error"]
        assert _limit_of(body) == {
            "name": "model_server_max_receive_message_length",
            "value": RECEIVE_LIMIT,
        }


def test_a_request_past_the_gateways_message_limit_is_a_413_naming_it(
    tiny_repo: Path, model_server: ModelServerHandle
) -> None:
    backend = GrpcBackend(model_server.grpc_target, retry=None, max_message_bytes=RECEIVE_LIMIT)
    app = create_app(gateway_settings(tiny_repo, models=["qa"]), backend=backend)
    try:
        client = app.test_client()
        assert client.post("/v1/qa", json=QA).status_code == 200
        response = client.post("/v1/models/qa:predict", json=MANY)
        assert response.status_code == 413, response.get_json()
        assert _limit_of(response.get_json()) == {
            "name": "max_message_bytes",
            "value": RECEIVE_LIMIT,
        }
    finally:
        close_app(app)
