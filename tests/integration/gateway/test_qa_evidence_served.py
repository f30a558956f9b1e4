"""qa answers show their evidence: a tiny memory network with the supporting-fact head,
exported by the training task, served by the local model server, answered by the gateway.

The model is trained on the qa1 fixture until its attention finds the supporting sentence;
``/v1/qa`` and the generic endpoint must then name that sentence as the heaviest evidence.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.api.conftest import gateway_app
from tests.support.model_server import running_model_server
from training.data.babi import read_babi

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "babi"


@pytest.fixture(scope="module")
def repo(qa_evidence_run: tuple[Path, Path]) -> Path:
    """The repo of the session's qa1-trained memnet (tests/support/qa_export.py)."""
    _, version = qa_evidence_run
    return version.parents[1]


@pytest.fixture(scope="module")
def app(repo: Path) -> Iterator[Flask]:
    with running_model_server(repo) as server, gateway_app(repo, server.grpc_target) as built:
        yield built


def test_qa_answers_carry_the_supporting_sentence(app: Flask) -> None:
    client = app.test_client()
    # qa1 (one supporting fact): the fixture folder holds other tasks too.
    example = next(item for item in read_babi(FIXTURES).examples if item.task == 1)
    supporting = example.statements[example.supporting[0]]
    body = {"article": example.article, "question": example.question}
    answer = client.post("/v1/qa", json=body).get_json()
    evidence = answer["evidence"]
    assert 1 <= len(evidence) <= 3
    # "segment" as on :predict below; "sentence" (the same text) kept for older clients.
    assert evidence[0]["segment"] == evidence[0]["sentence"] == supporting
    weights = [item["weight"] for item in evidence]
    assert weights == sorted(weights, reverse=True) and 0.0 <= weights[-1] <= weights[0] <= 1.0
    generic = client.post("/v1/models/qa:predict", json={"inputs": body}).get_json()
    assert generic["outputs"]["evidence"][0]["segment"] == supporting
