"""The serving spec refuses specs whose parts contradict each other (serving/spec.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from serving.spec import ServingSpec


def _spec(**heads: Any) -> dict[str, Any]:
    return {
        "title": "t",
        "inputs": [
            {"kind": "text", "field": "text", "tensor": "ids", "max_tokens": 8, "vocab_size": 100}
        ],
        "heads": list(heads.values()),
        "example": {"text": "hello"},
    }


def _categorical(labels: list[str]) -> dict[str, Any]:
    return {"kind": "categorical", "output": "probs", "field": "label", "labels": labels}


def test_a_valid_spec_is_accepted() -> None:
    spec = ServingSpec.model_validate(_spec(head=_categorical(["a", "b"])))
    assert spec.heads[0].field == "label"


@pytest.mark.parametrize(
    "head",
    [
        _categorical(["yes", "no", "yes"]),
        {"kind": "binary", "output": "p", "field": "f", "labels": ["same", "same"]},
        {"kind": "multilabel", "output": "p", "field": "f", "labels": ["x", "y", "x"]},
    ],
    ids=["categorical", "binary", "multilabel"],
)
def test_duplicate_labels_are_refused(head: dict[str, Any]) -> None:
    # Answers are keyed and reported by label: two equal labels make two columns unreadable.
    with pytest.raises(ValidationError, match="duplicate label"):
        ServingSpec.model_validate(_spec(head=head))


def test_duplicate_head_fields_are_refused() -> None:
    first = _categorical(["a", "b"])
    second = {**_categorical(["c", "d"]), "output": "other"}
    with pytest.raises(ValidationError, match="duplicate head field"):
        ServingSpec.model_validate(_spec(one=first, two=second))


def test_example_must_name_exactly_the_inputs() -> None:
    raw = _spec(head=_categorical(["a", "b"]))
    raw["example"] = {"text": "hello", "extra": "x"}
    with pytest.raises(ValidationError, match="example must give exactly"):
        ServingSpec.model_validate(raw)


def test_unknown_keys_are_refused() -> None:
    raw = _spec(head={**_categorical(["a", "b"]), "lables": ["a"]})
    with pytest.raises(ValidationError, match="lables"):
        ServingSpec.model_validate(raw)
