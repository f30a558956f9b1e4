"""``/openapi.json`` built from the pydantic models, and a self-contained ``/docs`` page."""

from __future__ import annotations

import html
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving.gateway import schemas

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "Malformed JSON",
    "404": "Unknown model or version",
    "413": "Body too large",
    "415": "Content-Type is not application/json",
    "422": "Validation failed or a limit was exceeded",
    "503": "Model server unavailable (see Retry-After)",
    "504": "Model server too slow",
}
PIN_PARAMETERS = [
    {"name": "version", "in": "query", "schema": {"type": "integer", "minimum": 1}},
    {"name": "label", "in": "query", "schema": {"type": "string"}},
]
# (method, path, summary, request models, response models)
ENDPOINTS: list[tuple[str, str, str, list[type[BaseModel]], list[type[BaseModel]]]] = [
    ("post", "/v1/qa", "Answer a question about a story (or a batch)",
     [schemas.QARequest, schemas.QABatchRequest], [schemas.QAResponse, schemas.QABatchResponse]),
    ("post", "/v1/profile", "Age, income group (proxy) and gender from posts (or a batch)",
     [schemas.ProfileRequest, schemas.ProfileBatchRequest],
     [schemas.ProfileResponse, schemas.ProfileBatchResponse]),
    ("post", "/v1/similarity", "Similarity of sentence pairs",
     [schemas.SimilarityRequest], [schemas.SimilarityResponse]),
    ("get", "/v1/models", "Served versions, state, signature and tokenizer hash",
     [], [schemas.ModelsResponse]),
]  # fmt: skip
PLAIN_ENDPOINTS = {
    "/healthz": "Liveness: the process answers (no dependencies)",
    "/readyz": "Readiness: backend answers and every model is AVAILABLE with its tokenizer",
    "/metrics": "Prometheus metrics",
}


def _content(models: list[type[BaseModel]]) -> dict[str, Any]:
    refs = [{"$ref": REF.format(model=model.__name__)} for model in models]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"application/json": {"schema": schema}}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the public API."""
    models = {model for _, _, _, requests, responses in ENDPOINTS for model in requests + responses}
    models.add(schemas.ErrorResponse)
    _, top = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda model: model.__name__)],
        ref_template=REF,
    )
    paths: dict[str, Any] = {}
    for method, path, summary, requests, responses in ENDPOINTS:
        error = {"content": _content([schemas.ErrorResponse])}
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": _content(responses)},
                **{code: {"description": text, **error} for code, text in ERROR_STATUSES.items()},
            },
        }
        if requests:
            operation["requestBody"] = {"required": True, "content": _content(requests)}
            operation["parameters"] = PIN_PARAMETERS
        paths[path] = {method: operation}
    for path, summary in PLAIN_ENDPOINTS.items():
        paths[path] = {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "multihead-serving gateway", "version": "1"},
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }


def docs_page() -> str:
    """A page with every endpoint and its schemas (no JavaScript, no CDN: works offline)."""
    document = openapi_document()
    sections = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            sections.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(operation['summary'])}</p>"
            )
    components = html.escape(json.dumps(document["components"]["schemas"], indent=2))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Gateway API</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head><body>"
        "<h1>multihead-serving gateway</h1><p>Machine-readable: "
        "<a href='/openapi.json'>/openapi.json</a>. Pin a version with <code>?version=N</code> "
        'or <code>?label=stable</code>. Errors: <code>{"error": str, "detail": [...]}'
        "</code>.</p>"
        + "".join(sections)
        + f"<h2>Schemas</h2><pre>{components}</pre></body></html>"
    )
