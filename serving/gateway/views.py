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
    """Readiness: the backend answers and every model has a version that fits its spec."""
    found = services()
    problems = found.registry.refresh()
    if problems:
        detail = [{"model": model, "reason": reason} for model, reason in problems.items()]
        retry = {"Retry-After": str(found.settings.retry_after_seconds)}
        return jsonify({"error": "not ready", "detail": detail}), 503, retry
    routed = {model: found.registry.state(model).routed for model in found.registry.models}
    versions = {model: runtime.version for model, runtime in routed.items() if runtime}
    return jsonify({"status": "ready", "models": versions})


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
