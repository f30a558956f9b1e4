"""The checks of a head's output values: a non-finite value is named before the range, whatever
the kind; a categorical answer without its probabilities map is the same answer less that key."""

from __future__ import annotations

import numpy as np
import pytest

from serving.gateway import aliases, heads
from serving.gateway.routes import prepare
from serving.spec import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
    TokenLabelsHead,
)

COLOURS = CategoricalHead(output="p", field="colour", labels=["red", "green", "blue"], top_k=2)
TAGS = MultilabelHead(output="p", field="tags", labels=["x", "y", "z"])
SPAM = BinaryHead(output="p", field="spam", labels=("ham", "spam"))
SIZE = RegressionHead(output="p", field="size")
TONE = ScoreHead(output="p", field="tone")
RULE = SegmentRule(separator_token=".", max_segments=3)
PARTS = SegmentWeightsHead(output="p", field="parts", input_field="text", rule=RULE)
WORDS = TokenLabelsHead(output="p", field="tags", input_field="text", labels=["O", "B-X", "I-X"])
# Each head with a row of three values, out of every probability range (so that a range
# check run first would name the range, not the non-finite value).
ROWS: list[tuple[HeadSpec, list[float]]] = [
    (COLOURS, [5.0, -3.0, 0.5]),
    (TAGS, [5.0, -3.0, 0.5]),
    (SPAM, [5.0, -3.0, 0.5]),
    (SIZE, [5.0, -3.0, 0.5]),
    (TONE, [5.0, -3.0, 0.5]),
    (PARTS, [5.0, -3.0, 0.5]),
    (WORDS, [5.0, -3.0, 0.5]),
]


def _outputs(head: HeadSpec, row: list[float]) -> dict[str, np.ndarray]:
    values = np.array(row, dtype=np.float32)
    if isinstance(head, BinaryHead | RegressionHead | ScoreHead):
        return {"p": values[:, np.newaxis]}  # three rows of one value
    if isinstance(head, TokenLabelsHead):
        return {"p": values[np.newaxis, np.newaxis]}  # one row, one token, three labels
    return {"p": values[np.newaxis]}  # one row of three


@pytest.mark.parametrize(("head", "row"), ROWS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("place", [0, 1, 2])
def test_a_non_finite_value_is_named_before_the_range(
    head: HeadSpec, row: list[float], bad: float, place: int
) -> None:
    # The probability heads read finiteness from the range check's min and max (numpy's
    # propagate a NaN; an infinity is one of them): the same error as an isfinite pass, in
    # any place, beside values out of range.
    row = [*row[:place], bad, *row[place + 1 :]]
    rows = 3 if isinstance(head, BinaryHead | RegressionHead | ScoreHead) else 1
    with pytest.raises(heads.OutputError, match="has NaN or infinite values") as caught:
        heads.head_values(_outputs(head, row), head, rows)
    assert not isinstance(caught.value, heads.ProbabilityError)


@pytest.mark.parametrize("head", [COLOURS, TAGS, SPAM])
def test_finite_values_out_of_range_are_still_no_probabilities(head: HeadSpec) -> None:
    rows = 3 if isinstance(head, BinaryHead) else 1
    with pytest.raises(heads.ProbabilityError, match="values from -3 to 5"):
        heads.head_values(_outputs(head, [5.0, -3.0, 0.5]), head, rows)


def test_an_empty_token_output_is_checked_as_before() -> None:
    # No values: no min or max to read (the isfinite pass, which passes).
    empty = {"p": np.zeros((1, 0, 3), dtype=np.float32)}
    assert heads.head_values(empty, WORDS, 1).shape == (1, 0, 3)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_a_categorical_answer_without_its_map_is_the_same_answer_less_that_key(
    top_k: int,
) -> None:
    head = COLOURS.model_copy(update={"label_descriptions": ["warm", "", "cold"], "note": "n"})
    row = np.array([0.2, 0.7, 0.1])
    full = heads.head_answer(head, row[np.newaxis], 0, top_k, ())
    brief = heads.head_answer(head, row[np.newaxis], 0, top_k, (), probabilities_map=False)
    assert "probabilities" in full
    assert list(brief.items()) == [item for item in full.items() if item[0] != "probabilities"]


MANY = CategoricalHead(output="p", field="word", labels=[f"w{index}" for index in range(57)])


@pytest.mark.parametrize("top_k", [1, 2, 5])
def test_without_the_map_ties_keep_label_order(top_k: int) -> None:
    # Without the map, the best label alone comes from numpy's argmax (top_k 1), which must
    # pick the label max() picks: the first of equal values (repeats, 0.0 and -0.0).
    generator = np.random.default_rng(9)
    for _ in range(200):
        row = generator.choice([0.0, -0.0, 0.125, 0.25, 1e-9], size=57)
        if generator.random() < 0.5:
            row[generator.integers(57)] = generator.random()
        full = heads.categorical(MANY, row, top_k)
        brief = heads.categorical(MANY, row, top_k, probabilities_map=False)
        assert brief == {key: value for key, value in full.items() if key != "probabilities"}
        assert [repr(item["probability"]) for item in brief["candidates"]] == [
            repr(item["probability"]) for item in full["candidates"]
        ]


def test_the_qa_alias_answers_alike_without_the_map_it_does_not_show(qa) -> None:
    # /v1/qa shows a label, its probability and the candidates: its categorical heads are
    # answered without the map of every label's probability, per version (alias_models).
    payload = {"article": "Mary moved to the bathroom.", "question": "Where is Mary?", "top_k": 2}
    prepared = aliases.prepare_alias(qa, payload)
    categorical = {head.field for head in qa.spec.heads if head.kind == "categorical"}
    assert categorical and prepared.unshown == categorical
    width = len(qa.spec.heads[0].labels)
    probabilities = np.linspace(1.0, 2.0, width, dtype=np.float32)[np.newaxis]
    outputs = {"answer_probs": probabilities / probabilities.sum()}
    full = qa.postprocess(outputs, prepared.instances, prepared.top_ks)
    brief = qa.postprocess(outputs, prepared.instances, prepared.top_ks, unshown=prepared.unshown)
    assert all("probabilities" not in brief[0][field] for field in categorical)
    assert aliases.qa_answer(qa, brief[0]) == aliases.qa_answer(qa, full[0])
    # The generic :predict route shows every head whole.
    generic = {"instances": [{"article": payload["article"], "question": payload["question"]}]}
    assert prepare(qa, generic).unshown == frozenset()
