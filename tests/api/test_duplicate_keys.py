"""A body whose object repeats a key is refused (422 naming the key), anywhere in the body.

Found by a new-user trial: ``{"article": "a", "article": "b", ...}`` was answered from the
last one. RFC 8259 section 4: parsers disagree on which one counts.
"""

from __future__ import annotations

import pytest

QA = '"article": "Mary went to the kitchen.", "question": "Where is Mary?"'


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/v1/qa", '{"article": "John left.", ' + QA + "}", ["body", "article"]),
        ("/v1/qa", "{" + QA + ', "top_k": 2, "top_k": 1}', ["body", "top_k"]),
        (
            "/v1/qa",
            '{"instances": [{' + QA + '}, {"question": "Who?", ' + QA + "}]}",
            ["body", "instances", 1, "question"],
        ),
        ("/v1/models/qa:predict", '{"inputs": {"article": "x", ' + QA + "}}", None),
        (
            "/v1/similarity",
            '{"pairs": [{"text_a": "a", "text_b": "b", "text_a": "c"}]}',
            ["body", "pairs", 0, "text_a"],
        ),
        ("/v1/qa", '{"instances": [], "instances": [{' + QA + "}]}", ["body", "instances"]),
    ],
)
def test_a_repeated_key_is_422_at_its_path(client, path, body, location) -> None:
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    (detail,) = response.get_json()["detail"]
    assert detail["loc"] == (location or ["body", "inputs", "article"])
    assert detail["type"] == "duplicate_key" and detail["msg"]


def test_every_repeated_key_is_named(client) -> None:
    body = '{"instances": [{"a": 1, "a": 2, "b": 1, "b": 2}], "top_k": 1, "top_k": 2}'
    response = client.post("/v1/qa", data=body, content_type="application/json")
    locations = [detail["loc"] for detail in response.get_json()["detail"]]
    # An object's own repeats first, then those inside its values, in document order.
    assert locations == [
        ["body", "top_k"],
        ["body", "instances", 0, "a"],
        ["body", "instances", 0, "b"],
    ]


def test_the_same_key_in_different_objects_is_fine(client) -> None:
    body = '{"instances": [{' + QA + "}, {" + QA + "}]}"
    response = client.post("/v1/qa", data=body, content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "body", "location"),
    [
        ("/v1/qa", '{"\\ud800": 1, ' + QA + "}", ["body", "\\ud800"]),
        (
            "/v1/models/qa:predict",
            '{"inputs": {"\\udc00x": "a", ' + QA + "}}",
            ["body", "inputs", "\\udc00x"],
        ),
        (
            "/v1/qa",
            '{"instances": [{' + QA + '}, {"a\\ud83d": 2}]}',
            ["body", "instances", 1, "a\\ud83d"],
        ),
        (
            "/v1/similarity",
            '{"pairs": [{"text_a": "a", "\\ud800": "b"}]}',
            ["body", "pairs", 0, "\\ud800"],
        ),
    ],
)
def test_a_key_that_is_no_unicode_text_is_422_at_its_path(client, path, body, location) -> None:
    """A key holding a lone surrogate (``"\\ud800"``, which JSON's escapes allow) was a 422
    at its object's parent (``["body"]``, or ``["body", "inputs"]`` saying "Input should be a
    valid string" of an object): pydantic cannot read the key. Now the key itself, escaped."""
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 422, response.get_data(as_text=True)
    (detail,) = response.get_json()["detail"]
    assert detail["loc"] == location
    assert detail["type"] == "string_unicode" and "lone surrogate" in detail["msg"]
