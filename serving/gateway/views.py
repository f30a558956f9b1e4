"""Thin views: parse the request model, call the inference core, serialise the answer."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from serving.gateway import inference
from serving.gateway.backends import TensorSpec, VersionSelector
from serving.gateway.docs_ui import docs_response
from serving.gateway.errors import BackendError, GatewayError
from serving.gateway.inference import Call, Services
from serving.gateway.openapi import openapi_document
from serving.gateway.schemas import (
    ModelInfo,
    ModelRef,
    ModelsResponse,
    ProfileBatchRequest,
    ProfileBatchResponse,
    ProfileRequest,
    ProfileResponse,
    QABatchRequest,
    QABatchResponse,
    QARequest,
    QAResponse,
    SimilarityRequest,
    SimilarityResponse,
    VersionInfo,
)

Model = TypeVar("Model", bound=BaseModel)
MAX_VERSION = 2**63 - 1  # ModelSpec.version is an int64
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

blueprint = Blueprint("gateway", __name__)


def services() -> Services:
    """The app's services (settings, backend, registry, metrics)."""
    found: Services = current_app.extensions["gateway"]
    return found


def validation_error(error: ValidationError, prefix: tuple[str, ...] = ()) -> GatewayError:
    """A 422 whose details give each failing field's path (the input itself is not echoed)."""
    detail = [
        {"loc": [*prefix, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False, include_context=False)
    ]
    return GatewayError(422, "the request is invalid", detail)


def read_json() -> Any:
    """The parsed JSON body, after the content-type and size checks."""
    if request.mimetype != "application/json":
        raise GatewayError(415, "Content-Type must be application/json")
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise GatewayError(413, f"the body exceeds the limit max_body_bytes={limit}")
    try:
        return json.loads(request.get_data(cache=False))
    except ValueError as error:
        raise GatewayError(400, "the body is not valid JSON", [{"msg": str(error)}]) from error
    except RecursionError as error:
        raise GatewayError(400, "the body is nested too deeply") from error


def parse(model: type[Model], payload: Any) -> Model:
    """Validate a payload against a request model (422 on failure)."""
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        raise validation_error(error, ("body",)) from error


def call_context(model: str) -> Call:
    """The version pin from ``?version=N`` / ``?label=L`` and the request id."""
    g.model = model
    version_text = request.args.get("version")
    label = request.args.get("label")
    problems = []
    if version_text is not None and label is not None:
        problems.append({"loc": ["query"], "msg": "give version or label, not both"})
    if version_text is not None and not (
        version_text.isdigit() and 0 < int(version_text) <= MAX_VERSION
    ):
        problems.append({"loc": ["query", "version"], "msg": "must be a positive integer"})
    if label is not None and not LABEL_PATTERN.match(label):
        problems.append({"loc": ["query", "label"], "msg": "must match [A-Za-z0-9_.-]{1,64}"})
    if problems:
        raise GatewayError(422, "invalid version pin", problems)
    version = int(version_text) if version_text is not None else None
    return Call(selector=VersionSelector(version=version, label=label), request_id=g.request_id)


def respond(answer: BaseModel, model: ModelRef) -> Response:
    """Serialise a response model and note the version for metrics and logs."""
    g.version = str(model.version)
    return jsonify(answer.model_dump(mode="json"))


@blueprint.post("/v1/qa")
def qa() -> Response:
    """Answer one QA request or a batch of them."""
    payload = read_json()
    call = call_context("qa")
    if isinstance(payload, dict) and "instances" in payload:
        batch = parse(QABatchRequest, payload)
        answers, model = inference.answer_qa(services(), batch.instances, call, batched=True)
        return respond(QABatchResponse(predictions=answers, model=model), model)
    single = parse(QARequest, payload)
    answers, model = inference.answer_qa(services(), [single], call, batched=False)
    return respond(QAResponse(**answers[0].model_dump(), model=model), model)


@blueprint.post("/v1/profile")
def profile() -> Response:
    """Profile one person or a batch of people."""
    payload = read_json()
    call = call_context("profile")
    if isinstance(payload, dict) and "instances" in payload:
        batch = parse(ProfileBatchRequest, payload)
        answers, model = inference.answer_profile(services(), batch.instances, call, batched=True)
        return respond(ProfileBatchResponse(predictions=answers, model=model), model)
    single = parse(ProfileRequest, payload)
    answers, model = inference.answer_profile(services(), [single], call, batched=False)
    return respond(ProfileResponse(**answers[0].model_dump(), model=model), model)


@blueprint.post("/v1/similarity")
def similarity() -> Response:
    """Score sentence pairs."""
    payload = read_json()
    call = call_context("similarity")
    parsed = parse(SimilarityRequest, payload)
    scores, model = inference.answer_similarity(services(), parsed, call)
    return respond(SimilarityResponse(scores=scores, model=model), model)


@blueprint.get("/v1/models")
def models() -> Response:
    """Every model's versions, states, routed signature and tokenizer hashes."""
    found = services()
    infos = [_model_info(found, name) for name in found.settings.models]
    return jsonify(ModelsResponse(models=infos).model_dump(mode="json"))


def _model_info(found: Services, name: str) -> ModelInfo:
    state = found.registry.refresh_model(name)
    routed = state.routed.version if state.routed else None
    versions = []
    for status in state.statuses:
        sha256 = None
        if status.state == "AVAILABLE":
            try:
                sha256 = found.registry.assets(name, status.version).tokenizer_sha256
            except GatewayError:
                sha256 = None
        versions.append(
            VersionInfo(
                version=status.version,
                state=status.state,
                error=status.error,
                tokenizer_sha256=sha256,
                routed=status.version == routed,
            )
        )
    signature: dict[str, object] | None = None
    error = state.error
    if routed is not None:
        try:
            metadata = found.backend.model_metadata(name, VersionSelector(version=routed))
            signature = {
                "inputs": _describe(metadata.inputs),
                "outputs": _describe(metadata.outputs),
            }
        except BackendError as failure:
            error = error or f"metadata: backend {failure.failure.value}"
    return ModelInfo(name=name, versions=versions, signature=signature, error=error or None)


def _describe(specs: dict[str, TensorSpec]) -> dict[str, object]:
    return {key: {"dtype": spec.dtype, "shape": list(spec.shape)} for key, spec in specs.items()}


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response | tuple[Response, int, dict[str, str]]:
    """Readiness: the backend answers and every model is routable with its tokenizer."""
    found = services()
    problems = found.registry.refresh()
    if problems:
        detail = [{"model": model, "reason": reason} for model, reason in problems.items()]
        retry = {"Retry-After": str(found.settings.retry_after_seconds)}
        return jsonify({"error": "not ready", "detail": detail}), 503, retry
    routed = {model: found.registry.state(model).routed for model in found.settings.models}
    versions = {model: assets.version for model, assets in routed.items() if assets}
    return jsonify({"status": "ready", "models": versions})


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = services().metrics.exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document generated from the request and response models."""
    return jsonify(openapi_document())


@blueprint.get("/docs")
def docs() -> Response:
    """Swagger UI on ``/openapi.json``, from local files (works offline)."""
    return docs_response()
