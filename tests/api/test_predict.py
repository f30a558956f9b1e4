"""The generic endpoints (TF Serving's URL scheme) against the real local model server."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

STORY = "Mary moved to the kitchen. John went to the garden. Mary travelled to the office."
QA = {"article": STORY, "question": "Where is Mary?"}
PLACES = {"kitchen", "garden", "office", "bathroom", "hallway"}


def test_single_instance_answers_every_head(client) -> None:
    response = client.post("/v1/models/qa:predict", json={"inputs": QA, "top_k": 3})
    assert response.status_code == 200, response.json
    assert response.json["model"] == {"name": "qa", "version": 1}
    answer = response.json["outputs"]["answer"]
    assert answer["label"] in PLACES and set(answer["probabilities"]) == PLACES
    assert [item["probability"] for item in answer["candidates"]] == sorted(
        answer["probabilities"].values(), reverse=True
    )[:3]
    alias = client.post("/v1/qa", json={**QA, "top_k": 3}).json
    assert alias["answer"] == answer["label"]
    assert alias["confidence"] == pytest.approx(answer["probability"])


def test_batch_of_profiles_and_similarity(client) -> None:
    body = {"instances": [{"posts": ["I love my garden."]}, {"posts": ["a", "b"]}]}
    response = client.post("/v1/models/profile:predict", json=body)
    assert response.status_code == 200, response.json
    first = response.json["predictions"][0]
    assert first["age"]["unit"] == "years" and isinstance(first["age"]["value"], float)
    assert first["income_group"]["note"] and len(first["income_group"]["probabilities"]) == 10
    assert first["gender"]["label"] in {"female", "male"}
    pair = {"inputs": {"text_a": "a cat sat", "text_b": "a cat sat"}}
    score = client.post("/v1/models/similarity:predict", json=pair).json["outputs"]["score"]
    assert 0.0 <= score["value"] <= 1.0


def test_version_and_label_pins(client) -> None:
    pinned = client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA})
    assert pinned.status_code == 200 and pinned.json["model"]["version"] == 1
    assert client.post("/v1/models/qa/versions/7:predict", json={"inputs": QA}).status_code == 404
    label = client.post("/v1/models/qa/labels/stable:predict", json={"inputs": QA})
    assert label.status_code == 404 and set(label.json) == {"error", "detail"}


# "1%0A" is "1\n" in the path: "$" in a regex would let it through.
@pytest.mark.parametrize("version", ["²", "-1", "1.0", "99999999999999999999", "٣", "1%0A"])
def test_malformed_path_versions_are_422_never_500(client, version) -> None:
    response = client.post(f"/v1/models/qa/versions/{version}:predict", json={"inputs": QA})
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.json["detail"][0]["loc"] == ["path", "version"]


@pytest.mark.parametrize("version", ["0", "9999999999999999999", "0001"])
def test_versions_no_model_can_have_are_404(client, version) -> None:
    # The documented pattern is 1-19 digits; numbers past int64 and 0 (a version, but not the
    # tiny repo's) are versions not served ("0001" is version 1, which the tiny repo serves).
    response = client.post(f"/v1/models/qa/versions/{version}:predict", json={"inputs": QA})
    assert response.status_code == (200 if version == "0001" else 404), response.get_data()


def test_unknown_model_is_404(client) -> None:
    response = client.post("/v1/models/nothing:predict", json={"inputs": QA})
    assert response.status_code == 404 and set(response.json) == {"error", "detail"}
    assert client.get("/v1/models/nothing").status_code == 404
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'model="nothing"' not in metrics  # URL segments never become metric labels


@pytest.mark.parametrize(
    ("payload", "location"),
    [
        ({"inputs": {"article": "a"}}, ["body", "inputs", "question"]),
        ({"inputs": {**QA, "premise": "x"}}, ["body", "inputs", "premise"]),
        ({"inputs": {**QA, "article": 3}}, ["body", "inputs", "article"]),
        ({"instances": [QA, {"article": "a"}]}, ["body", "instances", 1, "question"]),
        ({"inputs": QA, "top_k": 0}, ["body", "top_k"]),
        ({"input": QA}, ["body", "inputs"]),
    ],
)
def test_validation_errors_keep_field_paths(client, payload, location) -> None:
    response = client.post("/v1/models/qa:predict", json=payload)
    assert response.status_code == 422
    assert location in [item["loc"] for item in response.json["detail"]]


def test_limits_are_named(app_factory) -> None:
    client = app_factory(max_chars_per_text=30, max_top_k=2).test_client()
    response = client.post("/v1/models/qa:predict", json={"inputs": QA, "top_k": 3})
    assert response.status_code == 422
    names = {item["limit"]["name"] for item in response.json["detail"]}
    assert names == {"max_chars_per_text", "max_top_k"}


def test_model_detail_listing_and_openapi(client) -> None:
    detail = client.get("/v1/models/qa").json
    assert detail["legacy"] is False  # the tiny repo writes serving_spec.json
    assert [item["field"] for item in detail["spec"]["inputs"]] == ["article", "question"]
    assert detail["versions"][0]["routed"] is True
    listed = {model["name"] for model in client.get("/v1/models").json["models"]}
    assert listed == {"qa", "profile", "similarity"}
    document = client.get("/openapi.json").json
    for name in ("qa", "profile", "similarity"):
        assert f"/v1/models/{name}:predict" in document["paths"]
        assert f"/v1/models/{name}/versions/{{version}}:predict" in document["paths"]
    schemas = document["components"]["schemas"]
    assert schemas["QaInstance"]["properties"]["article"]["maxLength"] == 20000
    assert schemas["ProfileInstance"]["properties"]["posts"]["maxItems"] == 200
    assert "QaOutputs" in schemas
    assert set(schemas["QaAnswerAnswer"]["properties"]["label"]["enum"]) == PLACES


def test_nan_outputs_are_502(app_factory, monkeypatch) -> None:
    app = app_factory(retries=0)
    client = app.test_client()
    # Checked against the real model server first (a pinned version is checked before use)
    assert client.post("/v1/models/qa/versions/1:predict", json={"inputs": QA}).status_code == 200

    def nan_outputs(model: str, selector: object, inputs: dict[str, Any], *rest: object) -> Any:
        return {"answer_probs": np.full((len(inputs["article_ids"]), 5), np.nan, np.float32)}

    monkeypatch.setattr(app.extensions["gateway"].backend, "predict", nan_outputs)
    for path, body in (
        ("/v1/models/qa/versions/1:predict", {"inputs": QA}),
        ("/v1/qa?version=1", QA),
    ):
        response = client.post(path, json=body, headers={"X-Request-ID": "nan-1"})
        assert response.status_code == 502
        assert response.json["error"] == "the model returned an unusable answer"


@pytest.mark.parametrize("query", ["?version=1", "?label=stable", "?version=%C2%B2", "?foo=bar"])
def test_predict_refuses_query_pins_it_would_ignore(client, query) -> None:
    # Found by a new-user trial: ?version= on :predict was silently ignored (answered by the
    # routed version). Pins go in the path, as in TF Serving's URL scheme.
    body = {"inputs": {"article": "Mary moved to the kitchen.", "question": "Where is Mary?"}}
    response = client.post(f"/v1/models/qa:predict{query}", json=body)
    assert response.status_code == 422
    detail = response.get_json()["detail"][0]
    assert detail["loc"][0] == "query" and detail["type"] == "unexpected_parameter"


def test_a_list_far_over_its_limit_is_refused_before_its_items_are_validated(client) -> None:
    # Found by a new-user trial: 480,000 junk instances were validated one by one (seconds of
    # CPU) before the batch limit was checked.
    response = client.post("/v1/models/qa:predict", json={"instances": [1] * 100_000})
    assert response.status_code == 422
    (problem,) = response.get_json()["detail"]
    assert problem["loc"] == ["body", "instances"] and problem["type"] == "limit_exceeded"


def test_predict_with_get_is_405_naming_post(client) -> None:
    response = client.get("/v1/models/qa:predict")
    assert response.status_code == 405
    # Only POST (and OPTIONS): the GET model view no longer takes 'qa:predict' as a name.
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert allowed == {"POST", "OPTIONS"}
    assert set(response.json) == {"error", "detail"}


def test_inputs_and_instances_together_are_named_as_such(client) -> None:
    # Found as a new user: both keys were answered "Extra inputs are not permitted" at
    # ["body", "inputs"], read as an instance with too many input fields.
    response = client.post("/v1/models/qa:predict", json={"inputs": QA, "instances": [QA]})
    assert response.status_code == 422
    assert response.json["detail"] == [
        {
            "loc": ["body"],
            "msg": "give inputs (one instance) or instances (a batch), not both",
            "type": "conflicting_fields",
        }
    ]
