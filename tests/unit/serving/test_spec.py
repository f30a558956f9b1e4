"""The serving spec refuses specs whose parts contradict each other (serving/spec.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from serving.spec import ServingSpec, dump_spec, load_spec


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


@pytest.mark.parametrize(
    "head",
    [
        _categorical(["kitchen", "", "garden"]),
        {"kind": "binary", "output": "p", "field": "f", "labels": ["no", " \t"]},
        {"kind": "multilabel", "output": "p", "field": "f", "labels": ["x", "\n"]},
    ],
    ids=["categorical", "binary", "multilabel"],
)
def test_a_label_of_only_blanks_is_refused(head: dict[str, Any]) -> None:
    # Found by the adversarial repo pass: a labels list read from a file with an empty line
    # was a valid spec, and the model's class answered as the label "".
    with pytest.raises(ValidationError, match="labels"):
        ServingSpec.model_validate(_spec(head=head))


@pytest.mark.timeout(60)
def test_many_labels_are_checked_for_duplicates_without_a_quadratic_scan() -> None:
    # Found by the adversarial repo pass: every label was counted over the whole list (20,000
    # labels: 3.5 s of CPU per read, in each gateway worker at each check; 200,000: minutes,
    # the version poller stuck). A word-level answer head has tens of thousands.
    labels = [f"w{index}" for index in range(200_000)]
    spec = ServingSpec.model_validate(_spec(head=_categorical(labels)))
    assert len(spec.heads[0].labels) == 200_000  # type: ignore[union-attr]
    with pytest.raises(ValidationError, match=r"duplicate label: \['w7'\]"):
        ServingSpec.model_validate(_spec(head=_categorical([*labels, "w7"])))


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
    # Found as a new user: a misspelt key was told only the fields to give, not which was wrong.
    raw["example"] = {"txet": "hello"}
    with pytest.raises(
        ValidationError,
        match=r"missing \['text'\]; 'txet' is no input field \(did you mean 'text'\?\)",
    ):
        ServingSpec.model_validate(raw)


def test_unknown_keys_are_refused() -> None:
    raw = _spec(head={**_categorical(["a", "b"]), "lables": ["a"]})
    with pytest.raises(ValidationError, match="lables"):
        ServingSpec.model_validate(raw)


@pytest.mark.parametrize(
    "head",
    [
        {"kind": "regression", "output": "v", "field": "f", "clip": [0.0, math.inf]},
        {"kind": "regression", "output": "v", "field": "f", "scale": math.nan},
        {"kind": "regression", "output": "v", "field": "f", "offset": -math.inf},
        {"kind": "score", "output": "v", "field": "f", "range": [-math.inf, math.inf]},
    ],
    ids=["clip-inf", "scale-nan", "offset-inf", "range-inf"],
)
def test_numbers_that_are_not_finite_are_refused(head: dict[str, Any]) -> None:
    # JSON has no Infinity or NaN: such a spec was written with null in their place
    # (dump_spec), which load_spec then refused, so the exported version was never routed.
    with pytest.raises(ValidationError, match="finite"):
        ServingSpec.model_validate(_spec(head=head))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scale": 0.0}, "scale must not be 0"),
        ({"scale": -0.0}, "scale must not be 0"),
        ({"clip": [3.0, 3.0]}, "low < high"),
        ({"clip": [0.0, 0.0]}, "low < high"),
        ({"clip": [5.0, 1.0]}, "low < high"),
    ],
    ids=["scale-0", "scale-minus-0", "clip-point", "clip-zero", "clip-reversed"],
)
def test_a_regression_head_that_answers_one_value_whatever_the_model_says_is_refused(
    change: dict[str, Any], message: str
) -> None:
    # Found by the adversarial repo pass 11: the nli spec with its relatedness head's scale
    # set to 0 (or its clip to [3, 3]) was routed and answered every pair "1.0" ("3.0") with
    # a 200, whatever the model read. A score head's range already had to be low < high.
    head = {"kind": "regression", "output": "v", "field": "f", **change}
    with pytest.raises(ValidationError, match=message):
        ServingSpec.model_validate(_spec(head=head))
    ServingSpec.model_validate(_spec(head={**head, "scale": -2.0, "clip": [1.0, 5.0]}))


@pytest.mark.parametrize(
    "head",
    [
        {"kind": "binary", "labels": ["no", "yes"], "threshold": 0.0},
        {"kind": "multilabel", "labels": ["a", "b"], "threshold": 0},
        {"kind": "multilabel", "labels": ["a", "b"], "thresholds": [0.5, 0.0]},
    ],
    ids=["binary", "multilabel", "multilabel-per-label"],
)
def test_a_threshold_of_0_that_every_probability_reaches_is_refused(head: dict[str, Any]) -> None:
    # Found by the adversarial repo pass 11, as a regression head's scale 0: at threshold 0 a
    # binary head answered labels[1] to every text, a multilabel head every label.
    head = {"output": "p", "field": "f", **head}
    with pytest.raises(ValidationError, match="greater than 0"):
        ServingSpec.model_validate(_spec(head=head))


def test_a_spec_file_with_nan_or_infinity_is_refused(tmp_path: Path) -> None:
    # Python's and pydantic's JSON readers take these non-standard tokens by default.
    good = dump_spec(ServingSpec.model_validate(_spec(head=_categorical(["a", "b"]))))
    assert load_spec(_written(tmp_path, good)).heads[0].field == "label"
    for token in ("NaN", "Infinity", "-Infinity"):
        head = f'{{"kind": "regression", "output": "v", "field": "f", "scale": {token}}}'
        text = good.replace('"heads": [', f'"heads": [{head}, ', 1)
        with pytest.raises(ValidationError, match="finite"):
            load_spec(_written(tmp_path, text))


def _written(folder: Path, text: str) -> Path:
    path = folder / "serving_spec.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"example": {"text": ""}}, "1 to 8 chars"),
        ({"example": {"text": "a longer text"}}, "1 to 8 chars"),
    ],
)
def test_the_example_is_within_its_inputs_limits(change: dict[str, Any], message: str) -> None:
    # The example is what /docs offers and what the gateway checks a version with: one the
    # request rules refuse made "Try it out" a 422 on a version that was routed.
    spec = _spec(head=_categorical(["a", "b"]))
    spec["inputs"][0]["max_chars"] = 8
    with pytest.raises(ValidationError, match=message):
        ServingSpec.model_validate({**spec, **change})


def test_a_texts_example_is_within_max_items() -> None:
    spec = _spec(head=_categorical(["a", "b"]))
    spec["inputs"][0] |= {"kind": "texts", "separator": "[SEP]", "max_items": 2}
    for posts in ([], ["a", "b", "c"]):
        with pytest.raises(ValidationError, match="1 to max_items=2 items"):
            ServingSpec.model_validate({**spec, "example": {"text": posts}})
    assert ServingSpec.model_validate({**spec, "example": {"text": ["a", "b"]}})


@pytest.mark.parametrize("pad_id", [-1, 2**31, 10**12])
def test_pad_id_is_an_int32_id(pad_id: int) -> None:
    # -1 was exported (an Embedding reads it as its last row); 10**12 stopped the export with
    # numpy's OverflowError ("out of bounds for int32").
    with pytest.raises(ValidationError, match="pad_id"):
        ServingSpec.model_validate({**_spec(head=_categorical(["a", "b"])), "pad_id": pad_id})


def test_every_part_round_trips_through_its_json(tmp_path: Path) -> None:
    # Training writes serving_spec.json with dump_spec, the gateway reads it with load_spec:
    # one model, so every head kind, unicode and number-like labels, tuples and limits must
    # come back equal.
    raw = {
        "title": "Every part ☃",
        "pad_id": 3,
        "inputs": [
            {"kind": "text", "field": "model_config", "tensor": "a_ids", "max_tokens": 1,
             "vocab_size": 9, "truncation": "left", "add_special_tokens": False,
             "padding": "left"},
            {"kind": "texts", "field": "posts", "tensor": "b_ids", "max_tokens": 1_000_000,
             "vocab_size": 9, "separator": "[SEP]", "max_joined_chars": 5, "max_items": 3},
        ],
        "heads": [
            {**_categorical(["1", "10", "été", "日本", "-3.5"]), "top_k": 5,
             "label_descriptions": ["a", "b", "c", "d", "e"], "note": "proxy"},
            {"kind": "binary", "output": "b", "field": "b", "labels": ["0", "1"], "threshold": 1},
            {"kind": "multilabel", "output": "m", "field": "m", "labels": ["x"], "threshold": 1e-9,
             "top_k": 1, "thresholds": [0.25]},
            {"kind": "regression", "output": "r", "field": "r", "unit": "€", "scale": -1e300,
             "offset": 5e-324, "clip": [0, 5e-324]},
            {"kind": "score", "output": "s", "field": "s", "range": [-1, 1], "meaning": "tone"},
            {"kind": "segment_weights", "output": "w", "field": "w", "input_field": "model_config",
             "rule": {"separator_token": "。", "order": "last_first", "max_segments": 4096}},
        ],
        "example": {"model_config": "日本。", "posts": ["a" * 20_000]},
    }  # fmt: skip
    spec = ServingSpec.model_validate(raw)
    path = tmp_path / "serving_spec.json"
    path.write_text(dump_spec(spec))
    assert load_spec(path) == spec
    assert dump_spec(load_spec(path)) == dump_spec(spec)


@pytest.mark.parametrize("kind", ["categorical", "multilabel"])
def test_a_top_k_beyond_the_labels_is_refused(kind: str) -> None:
    head = {**_categorical(["a", "b"]), "kind": kind, "top_k": 3}
    with pytest.raises(ValidationError, match="top_k exceeds the number of labels"):
        ServingSpec.model_validate(_spec(head=head))


@pytest.mark.parametrize("thresholds", [[0.5], [0.5, 0.5, 0.5], [0.5, 1.5]])
def test_multilabel_thresholds_are_one_probability_per_label(thresholds: list[float]) -> None:
    head = {**_categorical(["a", "b"]), "kind": "multilabel", "thresholds": thresholds}
    with pytest.raises(ValidationError, match="thresholds"):
        ServingSpec.model_validate(_spec(head=head))


@pytest.mark.parametrize("value", ["", "   ", "\t", " serving_default"])
@pytest.mark.parametrize("name", ["signature_name", "title"])
def test_a_required_name_that_is_empty_blank_or_padded_is_refused(name: str, value: str) -> None:
    # A signature_name of "" was accepted and sent as such: TF Serving (and the local model
    # server) read "" as serving_default, so another signature than the spec's was served.
    with pytest.raises(ValidationError) as caught:
        ServingSpec.model_validate({**_spec(head=_categorical(["a", "b"])), name: value})
    assert [error["loc"] for error in caught.value.errors()] == [(name,)]
    assert "blank" in str(caught.value)


@pytest.mark.parametrize(
    "head",
    [
        {"kind": "regression", "output": "y", "field": "age", "unit": "  "},
        {"kind": "score", "output": "y", "field": "s", "note": " "},
        {**_categorical(["a", "b"]), "label_descriptions": ["fine", "\n"]},
    ],
)
def test_a_text_answered_to_clients_is_empty_or_no_blanks_only(head: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="not blanks"):
        ServingSpec.model_validate(_spec(head=head))
    empty = {key: "" if isinstance(value, str) and not value.strip() else value
             for key, value in head.items()}  # fmt: skip
    if "label_descriptions" in head:
        empty["label_descriptions"] = ["fine", ""]
    ServingSpec.model_validate(_spec(head=empty))  # "" = none
