"""A label the model server knows whose version it has not loaded (real gRPC).

Found by newuser10: with ``version_labels { key: "stable" value: 1 }`` and version 1's folder
removed while served, the server keeps the label (it refuses a label map naming a version
not loaded, and keeps the one in force) and answers a request by label NOT_FOUND "Servable
not found for request: Specific(qa, 1)". The gateway told the client 404 "model 'qa' has no
version labelled 'stable'": false (the label is there), and the client's fault for the
server's state; a label naming an unfit version was already a 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from flask.testing import FlaskClient

from serving.protos import tfs_wire_pb2
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import Forward, relay
from tests.support.model_server import ModelServerHandle

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
# What the server answers a metadata request by label: stable's version 1 was unloaded.
LABELS = {
    "stable": (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(qa, 1)"),
    "nope": (grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: nope"),
}


def _labels(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
    if method == "GetModelMetadata":
        spec = tfs_wire_pb2.GetModelMetadataRequest.FromString(request).model_spec
        if spec.version_label in LABELS:
            context.abort(*LABELS[spec.version_label])
    return bytes(forward(request))


@pytest.fixture
def label_client(tiny_repo: Path, model_server: ModelServerHandle) -> Iterator[FlaskClient]:
    """A gateway in front of the tiny model server through a relay answering labels as
    :data:`LABELS` says."""
    with (
        relay(model_server.grpc_target, _labels) as target,
        gateway_app(tiny_repo, target, retries=0) as app,
    ):
        yield app.test_client()


@pytest.mark.parametrize("path", ["/v1/qa?label=stable", "/v1/models/qa/labels/stable:predict"])
def test_a_label_whose_version_is_not_loaded_is_a_503_not_the_clients_404(
    label_client: FlaskClient, path: str
) -> None:
    body = QA if path.startswith("/v1/qa") else {"inputs": QA}
    response = label_client.post(path, json=body)
    assert response.status_code == 503, response.get_json()
    assert "Retry-After" in response.headers
    message = response.get_json()["error"]
    assert message == (
        "model 'qa' label 'stable' names a version the model server has not loaded "
        "(unloaded since, or not loaded yet)"
    )
    assert "Specific" not in message  # the server's text stays in the log


def test_a_label_the_server_does_not_know_is_still_a_404(label_client: FlaskClient) -> None:
    response = label_client.post("/v1/models/qa/labels/nope:predict", json={"inputs": QA})
    assert response.status_code == 404
    assert response.get_json()["error"] == "model 'qa' has no version labelled 'nope'"
    assert label_client.post("/v1/models/qa:predict", json={"inputs": QA}).status_code == 200
