"""``loadtests/served_models.py`` (the load test of any served model) against the real gateway:
what its users send is answered, and its check accepts exactly the right answers."""

from __future__ import annotations

from typing import Any

from loadtests.checks import check_model_answer, routed_examples


def test_every_tiny_model_example_is_answered_and_passes_the_check(client: Any) -> None:
    # Found as a new user: loadtests/ had users for /v1/qa, /v1/profile and /v1/similarity
    # only, so a repo of one's own models could not be load tested (every request a 404).
    names = [item["name"] for item in client.get("/v1/models").get_json()["models"]]
    examples = routed_examples(
        {name: client.get(f"/v1/models/{name}").get_json() for name in names}
    )
    assert sorted(examples) == sorted(names)
    for name, (example, fields) in examples.items():
        for payload in ({"inputs": example}, {"instances": [example] * 3}):
            response = client.post(f"/v1/models/{name}:predict", json=payload)
            assert response.status_code == 200, response.get_json()
            assert check_model_answer(name, fields, payload, response.get_json()) is None


def test_the_check_refuses_wrong_answers() -> None:
    single = {"inputs": {"text": "a"}}
    good = {"outputs": {"topic": {}, "stars": {}}, "model": {"name": "m", "version": 1}}
    assert check_model_answer("m", ["topic", "stars"], single, good) is None
    assert "not 'other'" in str(check_model_answer("other", ["topic", "stars"], single, good))
    assert "heads'" in str(check_model_answer("m", ["topic"], single, good))
    batch = {"instances": [{"text": "a"}] * 2}
    one = {"predictions": [good["outputs"]], "model": good["model"]}
    assert "one prediction per instance" in str(check_model_answer("m", ["topic"], batch, one))
    assert check_model_answer("m", ["topic"], single, []) == "no model in the answer"
