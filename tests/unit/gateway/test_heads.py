"""Every head kind's readable answer, and outputs that do not fit the spec."""

from __future__ import annotations

import re

import numpy as np
import pytest

from serving.gateway import heads
from serving.spec import (
    BinaryHead,
    CategoricalHead,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
)

COLOURS = CategoricalHead(
    output="colour_probs",
    field="colour",
    labels=["red", "green", "blue"],
    label_descriptions=["warm", "grassy", "cold"],
    top_k=2,
    note="a note",
)


def test_categorical_best_first_with_top_k_probabilities_and_note() -> None:
    values = heads.head_values({"colour_probs": np.array([[0.2, 0.7, 0.1]])}, COLOURS, 1)
    answer = heads.head_answer(COLOURS, values, 0, None, ())
    assert answer["label"] == "green" and answer["probability"] == pytest.approx(0.7)
    assert [candidate["label"] for candidate in answer["candidates"]] == ["green", "red"]
    assert answer["probabilities"] == pytest.approx({"red": 0.2, "green": 0.7, "blue": 0.1})
    assert answer["description"] == "grassy" and answer["note"] == "a note"
    assert len(heads.head_answer(COLOURS, values, 0, 3, ())["candidates"]) == 3


def test_multilabel_answers_its_top_k_labels_when_asked() -> None:
    # A request's top_k was accepted and ignored for a multilabel head: a client of a
    # 10,000-tag model asking for its 3 likeliest tags got every tag's probability only.
    tags = MultilabelHead(output="t", field="tags", labels=["x", "y", "z", "w"], threshold=0.6)
    row = np.array([0.2, 0.9, 0.5, 0.7])
    assert "candidates" not in heads.multilabel(tags, row)  # unchanged without top_k
    answer = heads.head_answer(tags, row[np.newaxis], 0, 3, ())
    assert answer["labels"] == ["y", "w"]
    assert [item["label"] for item in answer["candidates"]] == ["y", "w", "z"]
    assert answer["candidates"][2]["probability"] == pytest.approx(0.5)
    default = tags.model_copy(update={"top_k": 1})  # the spec's own default
    assert [
        item["label"]
        for item in heads.head_answer(default, row[np.newaxis], 0, None, ())["candidates"]
    ] == ["y"]


def test_multilabel_applies_each_labels_own_threshold() -> None:
    # A multi-label model's thresholds are tuned per label; the spec had one for all.
    tags = MultilabelHead(
        output="t", field="tags", labels=["x", "y", "z"], thresholds=[0.9, 0.2, 0.5]
    )
    assert heads.multilabel(tags, np.array([0.8, 0.3, 0.5]))["labels"] == ["y", "z"]


def test_binary_gives_the_probability_of_the_chosen_label() -> None:
    head = BinaryHead(output="p", field="spam", labels=("ham", "spam"), threshold=0.6)
    values = heads.head_values({"p": np.array([[0.7], [0.55]], np.float32)}, head, 2)
    assert heads.head_answer(head, values, 0, None, ()) == {
        "label": "spam",
        "probability": pytest.approx(0.7),
    }
    assert heads.head_answer(head, values, 1, None, ()) == {
        "label": "ham",
        "probability": pytest.approx(0.45),
    }


def test_multilabel_regression_and_score() -> None:
    tags = MultilabelHead(output="t", field="tags", labels=["a", "b", "c"], threshold=0.5)
    answer = heads.multilabel(tags, np.array([0.9, 0.1, 0.5]))
    assert answer["labels"] == ["a", "c"] and set(answer["probabilities"]) == {"a", "b", "c"}
    age = RegressionHead(output="age", field="age", unit="years", scale=10, offset=1, clip=(0, 90))
    assert heads.regression(age, 2.0) == {"value": 21.0, "unit": "years"}
    assert heads.regression(age, 100.0)["value"] == 90.0
    similarity = ScoreHead(output="s", field="score", range=(0.0, 1.0))
    assert [heads.score(similarity, value)["value"] for value in (1.2, 0.4, -0.1)] == [
        1.0,
        0.4,
        0.0,
    ]


def test_segment_weights_heaviest_existing_segments_first() -> None:
    head = SegmentWeightsHead(
        output="w",
        field="evidence",
        input_field="article",
        rule=SegmentRule(separator_token=".", max_segments=4),
        top_k=2,
    )
    row = np.array([0.1, 0.6, 0.2, 0.9])
    answer = heads.segment_weights(head, row, ["one.", "two.", "three.", None], head.top_k)
    assert answer == [
        {"segment": "two.", "weight": pytest.approx(0.6)},
        {"segment": "three.", "weight": pytest.approx(0.2)},
    ]


@pytest.mark.parametrize(
    "outputs",
    [
        {"colour_probs": np.array([[0.2, np.nan, 0.1]])},
        {"colour_probs": np.array([[0.2, np.inf, 0.1]])},
        {"colour_probs": np.array([[0.5, 0.5]])},  # two values for three labels
        {"colour_probs": np.array([0.5, 0.5, 0.0])},  # no batch dimension
        {"other": np.array([[0.2, 0.7, 0.1]])},
    ],
)
def test_unusable_outputs_are_output_errors(outputs) -> None:
    with pytest.raises(heads.OutputError):
        heads.head_values(outputs, COLOURS, 1)


def test_a_binary_head_on_a_two_unit_softmax_is_named_a_categorical_one() -> None:
    # Dense(2, activation="softmax") is how many Keras binary classifiers end: the fit check
    # said only "has shape [2, 2], expected [2]", as the export did.
    head = BinaryHead(output="p", field="spam", labels=("ham", "spam"))
    with pytest.raises(heads.OutputError, match=r"2-unit softmax is a categorical head"):
        heads.head_values({"p": np.array([[0.3, 0.7], [0.6, 0.4]])}, head, 2)


@pytest.mark.parametrize("values", [np.array([0.3, 0.7]), np.array([[0.3], [0.7]])])
def test_a_categorical_head_on_one_sigmoid_unit_is_named_a_binary_one(values) -> None:
    # Found by newuser7: Dense(1, activation="sigmoid") under CategoricalHead(labels=[2]) said
    # only "has shape [2], expected [2, 2]", the export "the spec needs [batch, 2]".
    head = CategoricalHead(output="p", field="spam", labels=["ham", "spam"])
    with pytest.raises(heads.OutputError, match=r"one sigmoid unit is a binary head: BinaryHead"):
        heads.head_values({"p": values}, head, 2)


@pytest.mark.parametrize(
    ("head", "width", "hint"),
    [
        (BinaryHead(output="p", field="tags", labels=("no", "yes")), 4, "multilabel head"),
        (RegressionHead(output="p", field="size", unit="cm"), 3, "'p_0': out[:, 0]"),
        (ScoreHead(output="p", field="tone"), 2, "give each of the 2 values its own"),
    ],
)
def test_a_one_value_head_on_several_units_gets_the_remedy(
    head: BinaryHead | RegressionHead | ScoreHead, width: int, hint: str
) -> None:
    # A regression over Dense(3) (height, width, depth) said only "has shape [2, 3],
    # expected [2]", nothing of how a spec serves several values.
    with pytest.raises(heads.OutputError, match=re.escape(hint)):
        heads.head_values({"p": np.full((2, width), 0.5)}, head, 2)


MANY = CategoricalHead(
    output="p", field="word", labels=[f"w{index}" for index in range(57)], top_k=1
)


@pytest.mark.parametrize("top_k", [1, 2, 3, 10, 57, 80])
def test_categorical_candidates_are_a_stable_descending_argsort(top_k: int) -> None:
    # Ties (exact repeats, 0.0 and -0.0) keep label order, as numpy's stable argsort of the
    # negated row does: the rule the candidates followed before they were picked in Python.
    generator = np.random.default_rng(9)
    for _ in range(50):
        row = generator.choice([0.0, -0.0, 0.125, 0.25, 0.5, 1e-9], size=57)
        row[generator.integers(57)] = generator.random()
        answer = heads.categorical(MANY, row, top_k)
        expected = np.argsort(-row, kind="stable")[:top_k].tolist()
        assert [item["label"] for item in answer["candidates"]] == [
            MANY.labels[index] for index in expected
        ]
        assert answer["label"] == MANY.labels[expected[0]]
        assert [item["probability"] for item in answer["candidates"]] == [
            float(row[index]) for index in expected
        ]


def test_a_spec_without_a_unit_or_description_answers_no_such_key() -> None:
    # A regression head without a unit answered "unit": "" (and a label whose description
    # was "" answered "description": ""): the key is left out, as the schema says.
    plain = RegressionHead(output="y", field="y")
    assert heads.regression(plain, 2.0) == {"value": 2.0}
    topic = CategoricalHead(
        output="c", field="topic", labels=["a", "b"], label_descriptions=["", "about b"]
    )
    assert "description" not in heads.categorical(topic, np.array([0.9, 0.1]), 1)
    assert heads.categorical(topic, np.array([0.1, 0.9]), 1)["description"] == "about b"
