"""``output_problem``: a head read as probabilities must give probabilities (no logits)."""

from __future__ import annotations

import numpy as np
import pytest

from serving.spec import BinaryHead, CategoricalHead, MultilabelHead, RegressionHead, ScoreHead
from serving.spec_outputs import output_problem

CATEGORICAL = CategoricalHead(output="probs", field="label", labels=["a", "b", "c"])
BINARY = BinaryHead(output="p", field="spam", labels=("ham", "spam"))
MULTILABEL = MultilabelHead(output="tags", field="tags", labels=["x", "y"])


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True))


LOGITS = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3]])


@pytest.mark.parametrize(
    ("head", "values", "detail"),
    [
        (CATEGORICAL, LOGITS, "values from -1 to 2, not probabilities in [0, 1]"),
        (CATEGORICAL, np.array([[0.1, 0.2, 0.3]]), "rows summing to 0.6-0.6, not 1"),
        (BINARY, np.array([2.997, 0.4]), "values from 0.4 to 3"),
        (MULTILABEL, np.array([[0.5, -0.2]]), "values from -0.2 to 0.5"),
    ],
)
def test_logits_are_no_probabilities(head, values: np.ndarray, detail: str) -> None:
    problem = output_problem(head, values)
    assert problem is not None and detail in problem
    assert problem.startswith(f"head {head.field} ({head.kind}): output {head.output} gives")
    assert "from_logits=True" in problem


@pytest.mark.parametrize(
    ("head", "values"),
    [
        (CATEGORICAL, softmax(LOGITS)),
        (CATEGORICAL, softmax(LOGITS).astype(np.float16)),  # a mixed-precision head
        (BINARY, np.array([0.0, 1.0, 0.3])),
        (MULTILABEL, np.array([[0.9, 0.95]])),  # independent sigmoids need not sum to 1
        (RegressionHead(output="r", field="age"), np.array([-40.0, 300.0])),
        (ScoreHead(output="s", field="score"), np.array([1.5])),  # clipped to its range
    ],
)
def test_probabilities_and_other_kinds_pass(head, values: np.ndarray) -> None:
    assert output_problem(head, values) is None


def test_sigmoids_under_a_categorical_head_are_named_a_multilabel_head() -> None:
    # A multi-label model (Dense(n, "sigmoid")) declared categorical was told only to end in a
    # softmax, which would make it another model.
    problem = output_problem(CATEGORICAL, np.array([[0.9, 0.8, 0.1]]))
    assert problem is not None and "are a multilabel head: MultilabelHead(" in problem
    assert "multilabel" not in (output_problem(CATEGORICAL, LOGITS) or "")
