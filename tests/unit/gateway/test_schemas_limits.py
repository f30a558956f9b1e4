"""Request models and size limits, without a model server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from serving.gateway import limits
from serving.gateway.errors import GatewayError
from serving.gateway.schemas import ProfileRequest, QABatchRequest, QARequest, SimilarityRequest
from serving.gateway.settings import GatewaySettings

SETTINGS = GatewaySettings(
    max_chars_per_text=10,
    max_posts_per_profile=2,
    max_pairs_per_request=1,
    max_instances_per_batch=2,
    max_top_k=3,
)


def test_qa_defaults_and_unknown_fields() -> None:
    assert QARequest(article="a", question="b").top_k == 1
    with pytest.raises(ValidationError) as caught:
        QARequest.model_validate({"article": "a", "question": "b", "topk": 2})
    assert caught.value.errors()[0]["loc"] == ("topk",)


@pytest.mark.parametrize(
    "payload",
    [
        {"article": "", "question": "q"},
        {"article": "a", "question": "q", "top_k": 0},
        {"article": 3, "question": "q"},
        {"instances": []},
    ],
)
def test_invalid_qa(payload) -> None:
    with pytest.raises(ValidationError):
        (QABatchRequest if "instances" in payload else QARequest).model_validate(payload)


def test_empty_posts_and_pairs_are_invalid() -> None:
    with pytest.raises(ValidationError):
        ProfileRequest(posts=[])
    with pytest.raises(ValidationError):
        SimilarityRequest(pairs=[])


def _limit_names(error: GatewayError) -> list[str]:
    return [item["limit"]["name"] for item in error.detail]


def test_qa_limits_name_the_limit_and_field() -> None:
    items = [QARequest(article="x" * 11, question="q", top_k=4)] * 3
    with pytest.raises(GatewayError) as caught:
        limits.check_qa(items, SETTINGS, batched=True)
    assert caught.value.status == 422
    names = _limit_names(caught.value)
    assert {"max_instances_per_batch", "max_chars_per_text", "max_top_k"} <= set(names)
    assert caught.value.detail[1]["loc"] == ["instances", 0, "article"]


def test_profile_and_similarity_limits() -> None:
    with pytest.raises(GatewayError) as caught:
        limits.check_profile([ProfileRequest(posts=["a", "b", "c"])], SETTINGS, batched=False)
    assert _limit_names(caught.value) == ["max_posts_per_profile"]
    pairs = SimilarityRequest.model_validate(
        {"pairs": [{"text_a": "a", "text_b": "b"}, {"text_a": "a", "text_b": "b" * 11}]}
    )
    with pytest.raises(GatewayError) as caught:
        limits.check_similarity(pairs, SETTINGS)
    assert _limit_names(caught.value) == ["max_pairs_per_request", "max_chars_per_text"]
    assert caught.value.detail[1]["loc"] == ["pairs", 1, "text_b"]


def test_within_limits_passes() -> None:
    limits.check_qa([QARequest(article="a", question="b", top_k=3)], SETTINGS, batched=False)


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_BACKEND", "rest")
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "123")
    monkeypatch.setenv("GATEWAY_MODELS", '["qa"]')
    settings = GatewaySettings()
    assert (settings.backend, settings.max_body_bytes, settings.models) == ("rest", 123, ("qa",))
