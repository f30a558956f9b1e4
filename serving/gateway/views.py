"""Health, readiness, metrics and documentation views (the endpoints live in routes/aliases)."""

from __future__ import annotations

from flask import Response, jsonify

from serving.gateway import aliases, architecture, routes
from serving.gateway.docs_ui import docs_response
from serving.gateway.openapi import openapi_document
from serving.gateway.web import blueprint, services

__all__ = ["aliases", "architecture", "blueprint", "routes"]  # importing them registers their views


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response | tuple[Response, int, dict[str, str]]:
    """Readiness: the backend answers and every required model has a version that fits its spec.

    Required: ``GatewaySettings.ready_models``, else ``models`` (``GATEWAY_MODELS``), else
    every routed model. newuser11: a typo in ``GATEWAY_MODELS`` (``reviws``) routed nothing
    and was "ready" with no model: every request a 404, in a pod taken into its Service.
    """
    found = services()
    problems = found.registry.refresh(defer_checks=True)  # a probe must not wait for a check
    settings = found.settings
    required = settings.ready_models or settings.models or found.registry.models
    setting = "GATEWAY_READY_MODELS" if settings.ready_models else "GATEWAY_MODELS"
    for model in required:
        if model not in found.registry.models:
            problems[model] = f"not configured ({setting} names it)"
    blocking = {model: reason for model, reason in problems.items() if model in required}
    if blocking:
        detail = [{"model": model, "reason": reason} for model, reason in blocking.items()]
        retry = {"Retry-After": str(found.settings.retry_after_seconds)}
        return jsonify({"error": "not ready", "detail": detail}), 503, retry
    routed = {model: found.registry.state(model).routed for model in found.registry.models}
    versions = {model: runtime.version for model, runtime in routed.items() if runtime}
    body: dict[str, object] = {"status": "ready", "models": versions}
    if problems:
        body["not_ready"] = [
            {"model": model, "reason": reason} for model, reason in problems.items()
        ]
    return jsonify(body)


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition."""
    body, content_type = services().metrics.exposition()
    return Response(body, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI document generated from every routed version's models."""
    return jsonify(openapi_document(services().registry))


@blueprint.get("/docs")
def docs() -> Response:
    """Human-readable API documentation (works offline)."""
    return docs_response()
