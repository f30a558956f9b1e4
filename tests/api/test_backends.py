"""The three backends behind one interface give the same answers for the same request."""

from __future__ import annotations

import pytest

from serving.gateway.app import create_app
from serving.gateway.backends import make_backend
from tests.api.conftest import gateway_settings
from tests.support.served_gateway import close_app

STORY = "Mary went to the kitchen. John moved to the office."
PAIRS = [{"text_a": "a cat", "text_b": "a dog"}, {"text_a": "x", "text_b": "x"}]
REQUESTS = [
    ("/v1/qa", {"article": STORY, "question": "Where is John?", "top_k": 5}),
    ("/v1/profile", {"instances": [{"posts": ["a post", "another one"]}, {"posts": ["hi"]}]}),
    ("/v1/similarity", {"pairs": PAIRS}),
]


@pytest.fixture
def clients(tiny_repo, model_server):
    built = {}
    for kind in ("grpc", "rest", "local"):
        settings = gateway_settings(
            tiny_repo,
            backend=kind,
            grpc_target=model_server.grpc_target,
            rest_url=model_server.rest_url,
        )
        built[kind] = create_app(settings, backend=make_backend(settings))
    yield {kind: app.test_client() for kind, app in built.items()}
    for app in built.values():
        close_app(app)


def _numbers(value):
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return pytest.approx(value, abs=1e-5) if isinstance(value, float) else value


@pytest.mark.parametrize(("path", "payload"), REQUESTS)
def test_grpc_rest_and_local_agree(clients, path, payload) -> None:
    answers = {kind: client.post(path, json=payload) for kind, client in clients.items()}
    for kind, answer in answers.items():
        assert answer.status_code == 200, (kind, answer.json)
    expected = answers["local"].json
    assert answers["grpc"].json == _numbers(expected)
    assert answers["rest"].json == _numbers(expected)


def test_models_listing_over_rest_and_local(clients) -> None:
    for kind in ("rest", "local"):
        models = clients[kind].get("/v1/models").json["models"]
        qa = next(model for model in models if model["name"] == "qa")
        assert qa["signature"]["inputs"]["question_ids"] == {
            "dtype": "DT_INT32",
            "shape": [-1, -1],
        }, kind
        assert clients[kind].get("/readyz").status_code == 200


def test_a_label_is_unknown_alike_on_every_backend(clients) -> None:
    # Found by newuser10: the local backend answered a label NOT_FOUND, which the gateway now
    # reads as "the label's version is not loaded" (503); the local backend knows no label.
    for kind, client in clients.items():
        response = client.post("/v1/qa?label=stable", json=REQUESTS[0][1])
        assert response.status_code == 404, (kind, response.json)
        assert response.json["error"] == "model 'qa' has no version labelled 'stable'"
