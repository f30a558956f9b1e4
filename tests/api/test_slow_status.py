"""One model slow to answer its status call does not take the others' answers with it.

Found by the adversarial repo pass 7: the gateway's listing (every poll, ``/readyz``,
``/v1/models``) stopped at the first status call that failed DEADLINE_EXCEEDED and gave every
later model that failure: a proxy or server stuck on one model's GetModelStatus made
``/readyz`` 503 for a pod whose ``GATEWAY_READY_MODELS`` named only models the server answered
for. Each model now gets its own answer within one deadline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest

from serving.protos import tfs_wire_pb2 as wire
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import Forward, relay
from tests.support.model_server import ModelServerHandle


@pytest.fixture
def stuck_on_qa(model_server: ModelServerHandle) -> Iterator[str]:
    """A real gRPC server in front of the session's model server whose GetModelStatus for qa
    answers only once the test ends (past any gateway deadline); the rest is forwarded."""
    released = threading.Event()

    def hook(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
        if method == "GetModelStatus":
            asked = wire.GetModelStatusRequest.FromString(request)
            if asked.model_spec.name == "qa":
                released.wait(30)
                context.abort(grpc.StatusCode.UNAVAILABLE, "released")
        return forward(request)

    with relay(model_server.grpc_target, hook, max_workers=16) as target:
        yield target
        released.set()


def test_a_model_slow_on_its_status_call_leaves_the_others_ready(
    tiny_repo, stuck_on_qa: str
) -> None:
    with gateway_app(
        tiny_repo,
        stuck_on_qa,
        ready_models=["profile", "similarity"],
        retries=0,
        request_timeout_seconds=0.5,
    ) as app:
        response = app.test_client().get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert set(body["models"]) == {"profile", "similarity"}
    assert body["not_ready"] == [{"model": "qa", "reason": "backend deadline_exceeded"}]
