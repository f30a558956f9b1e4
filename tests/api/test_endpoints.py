"""Every public endpoint through the Flask test client, against the real local model server."""

from __future__ import annotations

import json

import pytest

from serving.gateway.runtime import ModelRuntime

STORY = "Mary moved to the kitchen. John went to the garden. Mary travelled to the office."
QA = {"article": STORY, "question": "Where is Mary?"}


def _check_model(body, name: str) -> None:
    assert body["model"] == {"name": name, "version": 1}


def test_qa_single(client) -> None:
    response = client.post("/v1/qa", json={**QA, "top_k": 3}, headers={"X-Request-ID": "abc-1"})
    assert response.status_code == 200, response.json
    assert response.headers["X-Request-ID"] == "abc-1"
    body = response.json
    _check_model(body, "qa")
    assert body["answer"] in {"kitchen", "garden", "office", "bathroom", "hallway"}
    assert len(body["candidates"]) == 3
    probabilities = [candidate["probability"] for candidate in body["candidates"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert body["confidence"] == probabilities[0]


def test_qa_batch_is_one_call_with_answers_in_order(client) -> None:
    short = {"article": "Sandra went to the hallway.", "question": "Where is Sandra?"}
    batch = client.post("/v1/qa", json={"instances": [QA, short, QA]})
    assert batch.status_code == 200, batch.json
    predictions = batch.json["predictions"]
    assert len(predictions) == 3
    _check_model(batch.json, "qa")
    assert predictions[0] == predictions[2]
    # Same-length rows get no extra padding, so they match the single request exactly.
    alone = client.post("/v1/qa", json=QA).json
    same = client.post("/v1/qa", json={"instances": [QA, QA]}).json["predictions"][0]
    assert alone["answer"] == same["answer"]
    assert alone["confidence"] == pytest.approx(same["confidence"], abs=1e-5)
    metrics = client.get("/metrics").get_data(as_text=True)
    # Three backend calls (one per request) carrying 3 + 1 + 2 examples.
    assert 'gateway_batch_size_count{model="qa"} 3.0' in metrics
    assert 'gateway_batch_size_sum{model="qa"} 6.0' in metrics


def test_profile_single_and_batch(client) -> None:
    response = client.post("/v1/profile", json={"posts": ["I love my garden.", "Work was long."]})
    assert response.status_code == 200, response.json
    body = response.json
    _check_model(body, "profile")
    assert isinstance(body["age"], float)
    income = body["income_group"]
    assert len(income["probabilities"]) == 10
    assert income["is_proxy"] is True and income["note"]
    assert body["gender"]["label"] in {"female", "male"}
    assert 0.5 <= body["gender"]["probability"] <= 1.0
    batch = client.post("/v1/profile", json={"instances": [{"posts": ["a"]}, {"posts": ["b c"]}]})
    assert batch.status_code == 200
    assert len(batch.json["predictions"]) == 2


def test_similarity(client) -> None:
    pairs = [{"text_a": "a cat sat", "text_b": "a cat sat"}, {"text_a": "x", "text_b": "y z"}]
    response = client.post("/v1/similarity", json={"pairs": pairs})
    assert response.status_code == 200, response.json
    scores = response.json["scores"]
    assert len(scores) == 2 and all(0.0 <= score <= 1.0 for score in scores)
    _check_model(response.json, "similarity")


def test_version_pin(client) -> None:
    pinned = client.post("/v1/qa?version=1", json=QA)
    assert pinned.status_code == 200
    assert pinned.json["model"]["version"] == 1
    missing = client.post("/v1/qa?version=7", json=QA)
    assert missing.status_code == 404
    assert set(missing.json) == {"error", "detail"}
    unknown_label = client.post("/v1/qa?label=stable", json=QA)
    assert unknown_label.status_code == 404
    bad = client.post("/v1/qa?version=zero", json=QA)
    assert bad.status_code == 422
    assert bad.json["detail"][0]["loc"] == ["query", "version"]


def test_models_listing(client) -> None:
    response = client.get("/v1/models")
    assert response.status_code == 200
    models = {model["name"]: model for model in response.json["models"]}
    assert set(models) == {"qa", "profile", "similarity"}
    qa = models["qa"]
    assert qa["versions"][0]["state"] == "AVAILABLE"
    assert qa["versions"][0]["routed"] is True
    assert len(qa["versions"][0]["tokenizer_sha256"]) == 64
    assert qa["signature"]["inputs"]["article_ids"]["dtype"] == "DT_INT32"
    assert set(models["profile"]["signature"]["outputs"]) == {"age", "income_probs", "gender_prob"}


@pytest.mark.parametrize(
    ("models", "status"), [(("qa",), 200), (("qa", "reviws"), 503), (("reviws",), 503)]
)
def test_a_gateway_models_name_not_configured_is_not_ready(
    app_factory, caplog: pytest.LogCaptureFixture, models: tuple[str, ...], status: int
) -> None:
    # Found by the new-user trial (newuser11): GATEWAY_MODELS=reviws (a typo) routed no model
    # and /readyz was 200 {"status": "ready", "models": {}}: every request a 404.
    with caplog.at_level("WARNING", logger="serving.gateway.catalog"):
        ready = app_factory(models=list(models)).test_client().get("/readyz")
    assert ready.status_code == status
    named = [record.getMessage() for record in caplog.records if "reviws" in record.getMessage()]
    if status == 200:
        assert ready.json["models"] == {"qa": 1} and not named
        return
    assert ready.json["detail"] == [
        {"model": "reviws", "reason": "not configured (GATEWAY_MODELS names it)"}
    ]
    assert named and "GATEWAY_MODELS names ['reviws'], which GATEWAY_MODEL_REPO" in named[0]


def test_health_readiness_metrics_docs(client) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["models"] == {"qa": 1, "profile": 1, "similarity": 1}
    client.post("/v1/similarity", json={"pairs": [{"text_a": "a", "text_b": "b"}]})
    metrics = client.get("/metrics").get_data(as_text=True)
    assert (
        'gateway_requests_total{endpoint="/v1/similarity",model="similarity",status="200",'
        'version="1"} 1.0' in metrics
    )
    for stage in ("tokenise", "backend", "postprocess"):
        assert (
            f'gateway_stage_duration_seconds_count{{model="similarity",stage="{stage}"}}' in metrics
        )
    document = json.loads(client.get("/openapi.json").get_data(as_text=True))
    assert document["openapi"].startswith("3.")
    assert "QARequest" in document["components"]["schemas"]
    assert "/v1/qa" in document["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.get_data(as_text=True)


def test_generated_request_id(client) -> None:
    response = client.get("/healthz")
    assert len(response.headers["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    "answer",
    [
        {"score": [{"segment": "a", "weight": 1.0}]},  # a segment_weights head named "score"
        {"score": {"label": "x", "probability": 0.5}},  # a binary one
        {},  # none
    ],
)
def test_an_alias_over_heads_that_do_not_give_its_answer_is_502(app_factory, monkeypatch, answer):
    # A model served as "similarity" whose "score" head is another kind: the alias read it as
    # {"value": ...}; a list answer raised TypeError, a 500 "internal error" of the gateway.
    client = app_factory().test_client()
    pairs = {"pairs": [{"text_a": "a cat", "text_b": "a dog"}]}
    assert client.post("/v1/similarity", json=pairs).status_code == 200
    monkeypatch.setattr(ModelRuntime, "postprocess", lambda *args, **kwargs: [answer])
    response = client.post("/v1/similarity", json=pairs)
    assert response.status_code == 502, response.get_json()
    assert response.get_json()["error"].endswith("does not give this endpoint's answers")
