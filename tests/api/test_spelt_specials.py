"""A special token spelt in a client's text is read as plain text, through the whole gateway
(validation's kept encodings included): the real qa model answered ``bedroom`` for "Mary
moved to the [PAD] bathroom." (its padding id, masked out), and a post's ``[SEP]`` split it."""

from __future__ import annotations

import pytest

CASES = [
    ("/v1/qa", {"article": "Mary went to the [PAD] kitchen. [SEP] John [CLS] moved.",
                "question": "Where is [UNK] Mary?"}),
    ("/v1/profile", {"posts": ["I love my job [SEP] at the [PAD] bank", "[CLS] hello"]}),
    ("/v1/models/qa:predict", {"inputs": {"article": "Mary went [SEP] to the kitchen.",
                                          "question": "Where [PAD] is Mary?"}}),
]  # fmt: skip


def _lower(value: object) -> object:
    if isinstance(value, str):
        for token in ("[PAD]", "[SEP]", "[CLS]", "[UNK]"):
            value = value.replace(token, token.lower())
        return value
    if isinstance(value, list):
        return [_lower(item) for item in value]
    if isinstance(value, dict):
        return {key: _lower(item) for key, item in value.items()}
    return value


def _answers(body: dict[str, object]) -> dict[str, object]:
    # Evidence segments quote the client's own text: the spelling differs there only.
    return {key: value for key, value in body.items() if key not in ("evidence", "outputs")}


@pytest.mark.parametrize(("path", "payload"), CASES, ids=[path for path, _ in CASES])
def test_a_spelt_special_token_answers_as_its_plain_spelling(client, path, payload) -> None:
    spelt, plain = (client.post(path, json=body) for body in (payload, _lower(payload)))
    assert spelt.status_code == plain.status_code == 200, spelt.get_json()
    assert _answers(spelt.get_json()) == _answers(plain.get_json())
    if "outputs" in spelt.get_json():
        outputs = spelt.get_json()["outputs"]
        assert outputs["answer"] == plain.get_json()["outputs"]["answer"]
