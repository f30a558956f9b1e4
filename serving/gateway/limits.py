"""Size limits from the settings, checked before any model work (422 naming the limit)."""

from __future__ import annotations

from collections.abc import Sequence

from serving.gateway.errors import Detail, GatewayError, limit_error
from serving.gateway.schemas import ProfileRequest, QARequest, SimilarityRequest
from serving.gateway.settings import GatewaySettings

Location = tuple[str | int, ...]


def check_qa(items: Sequence[QARequest], settings: GatewaySettings, batched: bool) -> None:
    """Batch size, text lengths and top_k of QA requests."""
    problems = _batch_size(items, settings, batched)
    for index, item in enumerate(items):
        prefix: Location = ("instances", index) if batched else ()
        problems += _text((*prefix, "article"), item.article, settings)
        problems += _text((*prefix, "question"), item.question, settings)
        if item.top_k > settings.max_top_k:
            problems.append(
                limit_error([*prefix, "top_k"], "max_top_k", settings.max_top_k, item.top_k)
            )
    _raise(problems)


def check_profile(
    items: Sequence[ProfileRequest], settings: GatewaySettings, batched: bool
) -> None:
    """Batch size, posts per profile and post lengths."""
    problems = _batch_size(items, settings, batched)
    limit = settings.max_posts_per_profile
    for index, item in enumerate(items):
        prefix: Location = ("instances", index) if batched else ()
        if len(item.posts) > limit:
            problems.append(
                limit_error([*prefix, "posts"], "max_posts_per_profile", limit, len(item.posts))
            )
        for post_index, post in enumerate(item.posts):
            problems += _text((*prefix, "posts", post_index), post, settings)
    _raise(problems)


def check_similarity(request: SimilarityRequest, settings: GatewaySettings) -> None:
    """Pairs per request and sentence lengths."""
    problems: list[Detail] = []
    limit = settings.max_pairs_per_request
    if len(request.pairs) > limit:
        problems.append(limit_error(["pairs"], "max_pairs_per_request", limit, len(request.pairs)))
    for index, pair in enumerate(request.pairs):
        problems += _text(("pairs", index, "text_a"), pair.text_a, settings)
        problems += _text(("pairs", index, "text_b"), pair.text_b, settings)
    _raise(problems)


def _batch_size(items: Sequence[object], settings: GatewaySettings, batched: bool) -> list[Detail]:
    limit = settings.max_instances_per_batch
    if batched and len(items) > limit:
        return [limit_error(["instances"], "max_instances_per_batch", limit, len(items))]
    return []


def _text(location: Location, text: str, settings: GatewaySettings) -> list[Detail]:
    limit = settings.max_chars_per_text
    if len(text) > limit:
        return [limit_error(list(location), "max_chars_per_text", limit, len(text))]
    return []


def _raise(problems: list[Detail]) -> None:
    if problems:
        raise GatewayError(422, "the request exceeds a size limit", problems[:20])
