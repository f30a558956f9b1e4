"""The inference core: validate limits -> tokenise -> predict (version pinned) -> postprocess."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.gateway import limits, postprocess
from serving.gateway.assets import VersionAssets
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.errors import BackendError, BackendFailure, GatewayError, backend_to_gateway
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.registry import ModelRegistry
from serving.gateway.schemas import (
    ModelRef,
    ProfileAnswer,
    ProfileRequest,
    QAAnswer,
    QARequest,
    SimilarityRequest,
)
from serving.gateway.settings import GatewaySettings

LOGGER = logging.getLogger("serving.gateway.inference")


@dataclass(frozen=True)
class Services:
    """What a request needs, built once per app."""

    settings: GatewaySettings
    backend: Backend
    registry: ModelRegistry
    metrics: GatewayMetrics


@dataclass(frozen=True)
class Call:
    """Per-request context: which version to use and the id to forward."""

    selector: VersionSelector
    request_id: str


Inputs = dict[str, npt.NDArray[np.int32]]
Encoder = Callable[[VersionAssets], Inputs]


def qa_inputs(assets: VersionAssets, items: Sequence[QARequest]) -> Inputs:
    """Id matrices of QA requests, padded to the batch's longest text."""
    return {
        "article_ids": assets.encode("article_ids", [item.article for item in items]),
        "question_ids": assets.encode("question_ids", [item.question for item in items]),
    }


def profile_inputs(assets: VersionAssets, items: Sequence[ProfileRequest]) -> Inputs:
    """Id matrix of each person's joined posts."""
    texts = [assets.join_posts(item.posts) for item in items]
    return {"post_ids": assets.encode("post_ids", texts)}


def similarity_inputs(assets: VersionAssets, request: SimilarityRequest) -> Inputs:
    """Id matrices of the left and right sentences."""
    return {
        "left_ids": assets.encode("left_ids", [pair.text_a for pair in request.pairs]),
        "right_ids": assets.encode("right_ids", [pair.text_b for pair in request.pairs]),
    }


def answer_qa(
    services: Services, items: Sequence[QARequest], call: Call, batched: bool
) -> tuple[list[QAAnswer], ModelRef]:
    """Answer QA requests with one backend call."""
    limits.check_qa(items, services.settings, batched)
    assets, outputs = _infer(services, "qa", call, lambda assets: qa_inputs(assets, items))
    with services.metrics.stage("postprocess", "qa"), _output_errors(assets):
        answers = postprocess.qa_answers(outputs, assets.labels, [item.top_k for item in items])
    return answers, ModelRef(name="qa", version=assets.version)


def answer_profile(
    services: Services, items: Sequence[ProfileRequest], call: Call, batched: bool
) -> tuple[list[ProfileAnswer], ModelRef]:
    """Predict age, income group and gender for each person with one backend call."""
    limits.check_profile(items, services.settings, batched)
    assets, outputs = _infer(
        services, "profile", call, lambda assets: profile_inputs(assets, items)
    )
    with services.metrics.stage("postprocess", "profile"), _output_errors(assets):
        answers = postprocess.profile_answers(outputs, assets.labels, len(items))
    return answers, ModelRef(name="profile", version=assets.version)


def answer_similarity(
    services: Services, request: SimilarityRequest, call: Call
) -> tuple[list[float], ModelRef]:
    """Score every pair with one backend call."""
    limits.check_similarity(request, services.settings)
    assets, outputs = _infer(
        services, "similarity", call, lambda assets: similarity_inputs(assets, request)
    )
    with services.metrics.stage("postprocess", "similarity"), _output_errors(assets):
        scores = postprocess.similarity_scores(outputs, len(request.pairs))
    return scores, ModelRef(name="similarity", version=assets.version)


def _infer(
    services: Services, model: str, call: Call, encode: Encoder
) -> tuple[VersionAssets, dict[str, npt.NDArray[Any]]]:
    with _backend_errors(services):
        assets = services.registry.resolve(model, call.selector, call.request_id)
        try:
            return assets, _encode_and_predict(services, assets, encode, call)
        except BackendError as error:
            pinned = call.selector.version is not None or call.selector.label is not None
            if error.failure is not BackendFailure.NOT_FOUND or pinned:
                raise
            # The routed version was retired between two polls: re-route once, re-tokenise.
            fresh = services.registry.refresh_model(model).routed
            if fresh is None or fresh.version == assets.version:
                raise
            LOGGER.info(
                "%s version %d retired; retrying on %d", model, assets.version, fresh.version
            )
            return fresh, _encode_and_predict(services, fresh, encode, call)


def _encode_and_predict(
    services: Services, assets: VersionAssets, encode: Encoder, call: Call
) -> dict[str, npt.NDArray[Any]]:
    with services.metrics.stage("tokenise", assets.model):
        inputs = encode(assets)
    # Pin the exact version whose tokenizer produced these ids.
    pinned = VersionSelector(version=assets.version)
    services.metrics.batch_size.labels(assets.model).observe(len(next(iter(inputs.values()))))
    with services.metrics.stage("backend", assets.model):
        return services.backend.predict(assets.model, pinned, inputs, call.request_id)


@contextmanager
def _backend_errors(services: Services) -> Iterator[None]:
    try:
        yield
    except BackendError as error:
        LOGGER.warning("backend call failed: %s", error)
        raise backend_to_gateway(error, services.settings.retry_after_seconds) from error


@contextmanager
def _output_errors(assets: VersionAssets) -> Iterator[None]:
    try:
        yield
    except (postprocess.OutputError, KeyError, IndexError, TypeError, ValueError) as error:
        LOGGER.error("%s v%d: unusable model output: %r", assets.model, assets.version, error)
        raise GatewayError(502, "the model returned an unusable answer") from error
