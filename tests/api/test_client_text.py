"""What a client is told names fields and rules: no internal class names, its own text cut.

Found by a new-user trial: a 422 said "instance of QARequest" (a generated pydantic class) and
a 404 echoed a 300-character model name whole.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest
from pydantic import BaseModel

from serving.gateway.aliases import alias_models
from serving.gateway.errors import MAX_ECHO_CHARS

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
LONG = "x" * 300
# The longest an echoed text may come back: the cut text, escapes of what was cut ("\\n" per
# character at most 6), and "...".
MAX_ECHOED = MAX_ECHO_CHARS * 6 + 3


def _models_in(annotation: Any) -> set[type[BaseModel]]:
    """Every pydantic model an annotation holds (inside list[...], Annotated[...], unions)."""
    found = set()
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.add(annotation)
        for field in annotation.model_fields.values():
            found |= _models_in(field.annotation)
    for argument in get_args(annotation):
        found |= _models_in(argument)
    return found


def _class_names(app) -> set[str]:
    """The names of every request model the gateway generated for the routed versions."""
    models: set[type[BaseModel]] = set()
    for runtime in app.extensions["gateway"].registry.routed_runtimes().values():
        aliased = alias_models(runtime)
        for model in (runtime.models.single, runtime.models.batch, aliased.single, aliased.batch):
            models |= _models_in(model)
    return {model.__name__ for model in models}


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/qa", [1]),
        ("/v1/qa", {"instances": [3]}),
        ("/v1/profile", "posts"),
        ("/v1/similarity", {"pairs": [3]}),
        ("/v1/similarity", 3),
        ("/v1/models/qa:predict", {"inputs": 3}),
        ("/v1/models/qa:predict", {"instances": [3, QA]}),
        ("/v1/models/similarity:predict", []),
    ],
)
def test_422_messages_name_no_internal_classes(app_factory, path, payload) -> None:
    app = app_factory()
    response = app.test_client().post(path, json=payload)
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    names = _class_names(app)
    assert {"QARequest", "QaInstance", "SentencePair", "SimilarityRequest"} <= names
    assert not [name for name in names if name in text], text
    assert "JSON object" in response.get_json()["detail"][0]["msg"]


def _assert_cut(text: str) -> None:
    assert len(text) <= MAX_ECHOED and text.endswith("...")
    assert text.isprintable()


def test_an_unknown_model_name_is_echoed_cut(client) -> None:
    for response in (
        client.get(f"/v1/models/{LONG}%0A%00"),
        client.post(f"/v1/models/{LONG}:predict", json={"inputs": QA}),
        client.get(f"/v1/models/{LONG}/architecture.txt"),
    ):
        assert response.status_code == 404
        message = response.get_json()["error"]
        assert message.startswith("unknown model 'xxx") and len(message) < 100 + MAX_ECHOED
        _assert_cut(message.rstrip("'"))


def test_control_characters_are_escaped(client) -> None:
    response = client.get("/v1/models/a%0Ab%00c%E2%80%8B")
    assert response.get_json()["error"] == "unknown model 'a\\nb\\x00c\\u200b'"


def test_keys_in_details_are_echoed_cut(client) -> None:
    body_key = client.post("/v1/qa", json={**QA, LONG: 1})
    query_key = client.post(f"/v1/qa?{LONG}=1", json=QA)
    for response in (body_key, query_key):
        assert response.status_code == 422
        (detail,) = response.get_json()["detail"]
        _assert_cut(detail["loc"][-1])


def test_a_refused_content_encoding_is_echoed_cut(client) -> None:
    response = client.post("/v1/qa", json=QA, headers={"Content-Encoding": "br" + "r" * 500})
    assert response.status_code == 415
    assert len(response.get_json()["error"]) < 100 + MAX_ECHOED


@pytest.mark.parametrize("top_k", ["1e308", "9" * 400])
def test_a_number_over_its_limit_is_echoed_cut(client, top_k: str) -> None:
    # Found by the new-user trial: a top_k of 1e308 came back as its 309 digits.
    body = '{"article": "Mary went.", "question": "Where is Mary?", "top_k": ' + top_k + "}"
    response = client.post("/v1/qa", data=body, content_type="application/json")
    assert response.status_code == 422
    (detail,) = response.get_json()["detail"]
    assert detail["type"] == "limit_exceeded" and detail["limit"]["name"] == "max_top_k"
    assert detail["msg"].endswith("... exceeds the limit max_top_k=10")
    assert len(detail["msg"]) < 100 + MAX_ECHOED


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ('{"article": "Mary went.", "question": "Where?", "top_k": ' + "9" * 5000 + "}",
         ["body", "top_k"]),
        ('{"article": -' + "9" * 5000 + ', "question": "Where?"}', ["body", "article"]),
        ('{"instances": [{"article": "Mary went.", "question": ' + "1" * 4301 + "}]}",
         ["body", "instances", 0, "question"]),
    ],
)  # fmt: skip
def test_an_integer_of_thousands_of_digits_is_422_at_its_path(client, body, location) -> None:
    # Valid JSON (RFC 8259 sets no size), but Python's int() refuses more than 4300 digits:
    # it was a 400 "the body is not valid JSON" advising sys.set_int_max_str_digits().
    response = client.post("/v1/qa", data=body, content_type="application/json")
    assert response.status_code == 422, response.get_json()
    (detail,) = response.get_json()["detail"]
    assert detail["loc"] == location
    assert "sys." not in response.get_data(as_text=True)


def test_an_unknown_model_404_names_the_closest_routed_model(client) -> None:
    # Found by a new user's pass: a typo ("qq" for "qa") was a bare "unknown model", on every
    # route that names a model; the error text is unchanged, the detail says what is routed.
    routed = sorted(client.application.extensions["gateway"].registry.models)
    listed = f"routed models: {', '.join(routed)} (GET /v1/models lists them)"
    for response in (
        client.get("/v1/models/qaa"),
        client.post("/v1/models/qaa:predict", json={"inputs": QA}),
        client.get("/v1/models/qaa/architecture.txt"),
    ):
        assert response.status_code == 404
        body = response.get_json()
        assert body["error"] == "unknown model 'qaa'"
        assert body["detail"] == [{"msg": f"did you mean 'qa'? {listed}"}]
    # No close name: the routed list alone; a long name is not matched (nor costly).
    far = client.get("/v1/models/zzzzzz").get_json()["detail"][0]["msg"]
    assert far == listed
    long = client.get(f"/v1/models/qa{'a' * 100}").get_json()["detail"][0]["msg"]
    assert long.startswith("routed models: ")
