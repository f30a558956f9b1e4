"""Output tensors -> readable answers, and backend failure -> HTTP status."""

from __future__ import annotations

import numpy as np
import pytest

from serving.gateway import postprocess
from serving.gateway.errors import BackendError, BackendFailure, backend_to_gateway

QA_LABELS = {"answers": ["kitchen", "garden", "office"]}
PROFILE_LABELS = {
    "income_groups": [{"group": index, "label": f"group {index}"} for index in range(10)],
    "income_is_proxy": True,
    "income_note": "the income head predicts an industry proxy",
    "gender": {"labels": ["female", "male"], "positive": "male"},
}


def test_qa_top_k_sorted() -> None:
    outputs = {"answer_probs": np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32)}
    answers = postprocess.qa_answers(outputs, QA_LABELS, [2, 1])
    assert answers[0].answer == "garden"
    assert [c.answer for c in answers[0].candidates] == ["garden", "office"]
    assert answers[0].confidence == pytest.approx(0.7)
    assert [c.answer for c in answers[1].candidates] == ["kitchen"]


def test_qa_wrong_width_is_an_output_error() -> None:
    with pytest.raises(postprocess.OutputError):
        postprocess.qa_answers({"answer_probs": np.ones((1, 2))}, QA_LABELS, [1])


def test_profile_answers_mark_income_as_proxy() -> None:
    labels = PROFILE_LABELS
    income = np.zeros((2, 10), np.float32)
    income[0, 3] = income[1, 7] = 1.0
    outputs = {
        "age": np.array([31.5, 20.0], np.float32),
        "income_probs": income,
        "gender_prob": np.array([[0.8], [0.1]], np.float32),
    }
    first, second = postprocess.profile_answers(outputs, labels, 2)
    assert first.age == pytest.approx(31.5)
    assert (first.income_group.group, first.income_group.label) == (3, "group 3")
    assert first.income_group.is_proxy and "proxy" in first.income_group.note
    assert first.gender.label == "male"
    assert first.gender.probability == pytest.approx(0.8)
    assert second.gender.label == "female"
    assert second.gender.probability == pytest.approx(0.9)
    assert second.income_group.group == 7


def test_similarity_scores_clipped_and_missing_output() -> None:
    scores = postprocess.similarity_scores({"score": np.array([1.2, 0.4, -0.1])}, 3)
    assert scores == pytest.approx([1.0, 0.4, 0.0])
    with pytest.raises(postprocess.OutputError):
        postprocess.similarity_scores({"other": np.array([1.0])}, 1)


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (BackendFailure.UNAVAILABLE, 503),
        (BackendFailure.DEADLINE_EXCEEDED, 504),
        (BackendFailure.INVALID_ARGUMENT, 422),
        (BackendFailure.NOT_FOUND, 404),
        (BackendFailure.INTERNAL, 502),
    ],
)
def test_backend_failure_mapping_hides_raw_messages(failure, status) -> None:
    error = backend_to_gateway(BackendError(failure, "tensorflow::Status secret text"), 3)
    assert error.status == status
    assert "secret" not in error.message
    assert error.body()["detail"] == []
    assert (error.headers.get("Retry-After") == "3") == (status == 503)
