"""Payload generation from the shipped samples, and the answer checks of the load tests."""

from __future__ import annotations

import json
import random

import pytest

from loadtests.checks import check_response
from loadtests.payloads import DATA_DIR, MAX_POSTS, PayloadFactory, Samples, instances_of


@pytest.fixture(scope="module")
def factory() -> PayloadFactory:
    return PayloadFactory(Samples.load(), random.Random(3))


def test_samples_are_small_and_cover_all_babi_tasks() -> None:
    total = sum(path.stat().st_size for path in DATA_DIR.glob("*.jsonl"))
    assert total < 1_000_000
    samples = Samples.load()
    assert {record["task"] for record in samples.qa} == set(range(1, 21))
    assert len(samples.profile) >= 20 and len(samples.similarity) >= 100


def test_payloads_vary_and_stay_within_limits(factory: PayloadFactory) -> None:
    bodies = [json.dumps(factory.qa(), sort_keys=True) for _ in range(200)]
    assert len(set(bodies)) > 150
    profiles = [factory.profile() for _ in range(300)]
    counts = [len(item["posts"]) for body in profiles for item in instances_of(body)]
    assert min(counts) == 1 and max(counts) > 30 and max(counts) <= MAX_POSTS
    assert any("instances" in body for body in profiles)
    pairs = [len(factory.similarity()["pairs"]) for _ in range(200)]
    assert min(pairs) == 1 and max(pairs) > 4


def qa_answer(top_k: int = 1) -> dict[str, object]:
    candidates = [
        {"answer": "garden", "probability": 0.7},
        {"answer": "office", "probability": 0.2},
    ]
    return {
        "answer": "garden",
        "confidence": 0.7,
        "candidates": candidates[:top_k],
        "model": {"name": "qa", "version": 3},
    }


def profile_answer() -> dict[str, object]:
    probabilities = [0.1] * 10
    return {
        "age": 27.5,
        "income_group": {"group": 0, "label": "group 0", "probabilities": probabilities},
        "gender": {"label": "female", "probability": 0.8},
        "model": {"name": "profile", "version": 1},
    }


def test_good_answers_pass() -> None:
    question = {"article": "Mary went to the garden.", "question": "Where is Mary?", "top_k": 2}
    assert check_response("qa", question, qa_answer(top_k=2)) is None
    batch = {"instances": [question, question]}
    body = {"predictions": [qa_answer(2), qa_answer(2)], "model": {"name": "qa", "version": 3}}
    assert check_response("qa", batch, body) is None
    assert check_response("profile", {"posts": ["hello"]}, profile_answer()) is None
    pairs = {"pairs": [{"text_a": "a", "text_b": "b"}] * 2}
    scores = {"scores": [0.0, 1], "model": {"name": "similarity", "version": 1}}
    assert check_response("similarity", pairs, scores) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda body: body.update(confidence=1.5), "confidence"),
        (lambda body: body["model"].update(version="3"), "version"),
        (lambda body: body.update(answer=7), "answer"),
        (lambda body: body.update(answer="kitchen"), "best candidate"),
        (lambda body: body.update(candidates=[]), "candidates"),
        (lambda body: body["model"].update(name="profile"), "model"),
    ],
)
def test_wrong_qa_answers_fail(change, reason) -> None:
    body = qa_answer()
    change(body)
    problem = check_response("qa", {"article": "a", "question": "b"}, body)
    assert problem is not None and reason in problem


def test_wrong_profile_and_similarity_answers_fail() -> None:
    body = profile_answer()
    body["income_group"]["probabilities"] = [0.2] * 10  # type: ignore[index]
    assert "sum" in (check_response("profile", {"posts": ["x"]}, body) or "")
    body = profile_answer()
    body["gender"]["label"] = "robot"  # type: ignore[index]
    assert check_response("profile", {"posts": ["x"]}, body) is not None
    pairs = {"pairs": [{"text_a": "a", "text_b": "b"}] * 2}
    one_score = {"scores": [0.5], "model": {"name": "similarity", "version": 1}}
    assert "1 scores for 2 pairs" in (check_response("similarity", pairs, one_score) or "")
    too_high = {"scores": [0.5, 1.01], "model": {"name": "similarity", "version": 1}}
    assert check_response("similarity", pairs, too_high) is not None
    assert check_response("qa", {"instances": [{}]}, [1, 2]) == "body is not a JSON object"
