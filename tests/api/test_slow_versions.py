"""A version whose row of ``max_tokens`` ids takes longer than the request deadline, over real
gRPC (found by the adversarial repo pass 5: its fit check timed out as a request would, counted
as the server being busy, and was retried at every poll forever: the model was never routed).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import grpc
import pytest

from tests.api.conftest import gateway_app
from tests.support.grpc_servers import Forward, relay
from tests.support.model_server import ModelServerHandle

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


@pytest.fixture
def slow_longest(tiny_repo, model_server: ModelServerHandle) -> Iterator[str]:
    """A real gRPC server in front of the session's model server whose answer to the fit
    check's row of ``max_tokens`` ids (request id ``fit-check-...-longest-...``) takes 1 s."""

    def hook(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
        request_id = str(dict(context.invocation_metadata()).get("x-request-id", ""))
        if method == "Predict" and "-longest-" in request_id:
            time.sleep(1.0)
        return forward(request)

    with relay(model_server.grpc_target, hook) as target:
        yield target


def test_a_full_row_slower_than_the_request_deadline_is_routed_with_a_warning(
    tiny_repo, slow_longest: str, gateway_log: io.StringIO
) -> None:
    with gateway_app(
        tiny_repo, slow_longest, models=["qa"], retries=0, request_timeout_seconds=0.5
    ) as app:
        client = app.test_client()
        response = client.post("/v1/qa", json=QA)
        assert response.status_code == 200, response.get_json()
        assert client.get("/readyz").status_code == 200
    warned = [json.loads(line) for line in gateway_log.getvalue().splitlines()]
    long_texts = "requests of long texts will likely be 504s"
    assert any(line["level"] == "WARNING" and long_texts in line["message"] for line in warned), (
        warned
    )


def test_a_version_that_misses_the_check_deadline_is_refused_for_it(
    tiny_repo, slow_longest: str
) -> None:
    with gateway_app(
        tiny_repo,
        slow_longest,
        models=["qa"],
        retries=0,
        request_timeout_seconds=0.2,
        check_timeout_seconds=0.3,
    ) as app:
        client = app.test_client()
        response = client.post("/v1/qa", json=QA)
        assert response.status_code == 503 and "Retry-After" in response.headers
        models = client.get("/v1/models").get_json()
        ready = client.get("/readyz")
    assert ready.status_code == 503
    text = json.dumps(models)
    assert "within GATEWAY_CHECK_TIMEOUT_SECONDS 0.3" in text, text
    assert "127.0.0.1" not in text and "Deadline" not in text
