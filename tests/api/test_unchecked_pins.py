"""A request pinned to a version whose fit check could not run is a 503, never run unchecked.

Found by the adversarial repo pass 6: the check of a version met by a pinned request was
postponed when its metadata call failed (the model server busy for a moment), and the request
then ran on the unchecked version: here a 502 from its 3 labels for 5 outputs, a version that
is not routed (404) once checked.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE
from serving.spec import SPEC_FILE
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import Forward, relay
from tests.support.model_server import ModelServerHandle

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


@pytest.fixture
def busy_metadata(model_server: ModelServerHandle) -> Iterator[tuple[str, dict[str, bool]]]:
    """A real gRPC server relaying to the session's model server whose GetModelMetadata fails
    UNAVAILABLE while ``busy["now"]`` is set."""
    busy = {"now": True}

    def hook(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
        if method == "GetModelMetadata" and busy["now"]:
            context.abort(grpc.StatusCode.UNAVAILABLE, "busy")
        return forward(request)

    with relay(model_server.grpc_target, hook) as target:
        yield target, busy


def test_a_pinned_request_waits_for_the_versions_check(
    tiny_repo: Path, tmp_path: Path, busy_metadata: tuple[str, dict[str, bool]]
) -> None:
    target, busy = busy_metadata
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    assets = repo / "qa" / "1" / ASSETS_DIR
    spec = json.loads((assets / SPEC_FILE).read_text())
    spec["heads"][0]["labels"] = spec["heads"][0]["labels"][:3]  # the model answers 5
    (assets / SPEC_FILE).write_text(json.dumps(spec))
    card = json.loads((assets / MODEL_CARD_FILE).read_text())
    card.pop("labels", None)
    (assets / MODEL_CARD_FILE).write_text(json.dumps(card))
    pinned = "/v1/models/qa/versions/1:predict"
    with gateway_app(repo, target, models=["qa"], retries=0) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        refused = client.post(pinned, json={"inputs": QA})
        assert refused.status_code == 503, refused.json
        assert refused.json["error"] == (
            "model 'qa' version 1 is not checked against its spec yet (the model server was "
            "busy, or its files could not be read now); retry later"
        )
        assert refused.headers["Retry-After"]
        busy["now"] = False
        unfit = client.post(pinned, json={"inputs": QA})
        assert unfit.status_code == 404 and "[2, 3]" in unfit.json["error"], unfit.json
