"""``/openapi.json`` built from every routed version's generated models, and ``/docs``.

Built again whenever the versions it describes change (each model's routed version and the
other fit versions a pin may reach: :func:`served_runtimes`), so a hot-reloaded version with
another spec (new fields, labels or limits) shows at once; otherwise the last document is
answered (building it generated pinned versions' request models and every JSON schema on
each request). Limits appear in the schemas as ``maxLength``, ``maxItems`` and ``maximum``.
"""

from __future__ import annotations

import threading
from typing import Any
from weakref import WeakKeyDictionary

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving.gateway import schemas
from serving.gateway.aliases import ALIASES, alias_models
from serving.gateway.registry import ModelRegistry
from serving.gateway.request_models import RequestModels, build_models
from serving.gateway.runtime import ModelRuntime
from serving.gateway.web import LABEL_PATTERN, VERSION_PATTERN
from serving.url_paths import model_url_path

REF = "#/components/schemas/{model}"
ERROR_STATUSES = {
    "400": "Malformed JSON",
    "401": "Missing or wrong API key (when GATEWAY_API_KEYS is set)",
    "404": "Unknown model or version",
    "411": "Neither Content-Length nor Transfer-Encoding: chunked",
    "413": "Body larger than max_body_bytes (any framing), or its model input past a message"
    " size limit of the gateway or the model server (detail names it)",
    "415": (
        "Content-Type is not application/json, a Content-Encoding other than identity, a "
        "charset other than UTF-8 for a body that is not ASCII, or a UTF-16/32 body"
    ),
    "422": (
        "Validation failed, a limit was exceeded, a text has no word, a key repeated in an "
        "object, or a query key the endpoint does not read"
    ),
    "429": "Rate limit exceeded (see Retry-After)",
    "502": "The model server failed or returned an unusable answer",
    "503": "Model server unavailable or no version fits (see Retry-After)",
    "504": "Model server too slow",
}
VERSION_SCHEMA = {"type": "string", "pattern": VERSION_PATTERN.pattern}
LABEL_SCHEMA = {"type": "string", "pattern": LABEL_PATTERN.pattern}
PIN = "Give version or label, not both (422)."
QUERY_PINS = [
    {"name": "version", "in": "query", "schema": VERSION_SCHEMA, "description": PIN},
    {"name": "label", "in": "query", "schema": LABEL_SCHEMA, "description": PIN},
]
UNKNOWN_QUERY = "A query key this endpoint does not read"
# path -> (summary, its error statuses and what each means)
PLAIN_ENDPOINTS: dict[str, tuple[str, dict[str, str]]] = {
    "/healthz": ("Liveness: the process answers (no dependencies)", {"422": UNKNOWN_QUERY}),
    "/readyz": (
        "Readiness: the backend answers and every model (or each one in GATEWAY_READY_MODELS) "
        "has a version that fits its spec",
        {
            "422": UNKNOWN_QUERY,
            "503": "Not ready: detail has {model, reason} per model (see Retry-After)",
        },
    ),
    "/metrics": (
        "Prometheus metrics",
        {
            "401": "Missing or wrong API key (when GATEWAY_API_KEYS is set and "
            "GATEWAY_METRICS_REQUIRE_KEY is true)",
            "422": UNKNOWN_QUERY,
        },
    ),
}
# (path, method, summary, request models, response models, parameters)
Endpoint = tuple[str, str, str, list[type[BaseModel]], list[type[BaseModel]], list[Any]]
# What a document describes: per model, its routed runtime and the other fit ones, in order.
# Runtimes compare by identity (a reloaded version is a new runtime), so == says "unchanged".
Served = tuple[tuple[str, ModelRuntime, tuple[ModelRuntime, ...]], ...]
# registry -> the last document built for it and what it described
_BUILT: WeakKeyDictionary[ModelRegistry, tuple[Served, dict[str, Any]]] = WeakKeyDictionary()
_BUILT_LOCK = threading.Lock()


def _path_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _pinned_models(
    name: str, routed: ModelRuntime, others: list[ModelRuntime]
) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    """Requests and answers of the pinned paths: the routed version's, plus those of each
    other fit version whose schemas differ (a label added or renamed, a head or input more or
    less), named after it (``NewsV1PredictResponse``). A pinned request is validated and
    answered by its version's own spec: with the routed version's schemas alone, a version
    pinned by a label answered labels and heads the document did not list."""
    requests, responses = _bodies(routed.models)
    same = [model.model_json_schema() for model in requests + responses]
    for other in others:
        own_requests, own_responses = _bodies(other.models)
        if [model.model_json_schema() for model in own_requests + own_responses] == same:
            continue
        named = build_models(
            f"{name} v{other.version}", other.spec, other.settings, other.tokenizers
        )
        more_requests, more_responses = _bodies(named)
        requests += more_requests
        responses += more_responses
    return requests, responses


def _bodies(models: RequestModels) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    """A version's request bodies (single, batch) and answers (single, batch)."""
    return [models.single, models.batch], [models.single_response, models.batch_response]


def _model_endpoints(
    name: str, runtime: ModelRuntime, others: list[ModelRuntime]
) -> list[Endpoint]:
    requests, responses = _bodies(runtime.models)
    pinned_requests, pinned_responses = _pinned_models(name, runtime, others)
    title = runtime.spec.title
    version = _path_parameter("version", VERSION_SCHEMA)
    label = _path_parameter("label", LABEL_SCHEMA)
    path = model_url_path(name)  # a path, not a name (pass 7: 'qa?x', 'q a')
    endpoints: list[Endpoint] = [
        (f"{path}:predict", "post", title, requests, responses, []),
        (f"{path}/versions/{{version}}:predict", "post", title, pinned_requests,
         pinned_responses, [version]),
        (f"{path}/labels/{{label}}:predict", "post", title, pinned_requests,
         pinned_responses, [label]),
        (path, "get", f"{name}: versions and the routed serving spec", [],
         [schemas.ModelDetail], []),
    ]  # fmt: skip
    if name in ALIASES and runtime.alias_problem is None:
        aliased = alias_models(runtime)
        alias_requests: list[type[BaseModel]] = [aliased.single]
        if aliased.batch is not None:
            alias_requests.append(aliased.batch)
        summary = f"{title} (the first API's shape)"
        endpoints.append(
            (f"/v1/{name}", "post", summary, alias_requests, schemas.ALIAS_RESPONSES[name],
             QUERY_PINS)
        )  # fmt: skip
    return endpoints


def served_runtimes(registry: ModelRegistry) -> Served:
    """Each model's routed runtime and its other fit ones (``pinnable_runtimes``)."""
    return tuple(
        (name, runtime, tuple(registry.pinnable_runtimes(name)))
        for name, runtime in registry.routed_runtimes().items()
    )


def endpoints(served: Served) -> list[Endpoint]:
    """Every documented endpoint, with the models of the ``served`` runtimes."""
    found: list[Endpoint] = [
        ("/v1/models", "get", "Every model: versions, state, why a version is not routed", [],
         [schemas.ModelsResponse], []),
    ]  # fmt: skip
    for name, runtime, others in served:
        found += _model_endpoints(name, runtime, list(others))
    return found


def openapi_document(registry: ModelRegistry) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the public API: the document last built for
    ``registry`` while it serves the same runtimes (:func:`served_runtimes`), else a new one.
    Callers must not change it."""
    served = served_runtimes(registry)
    with _BUILT_LOCK:
        built = _BUILT.get(registry)
    if built is not None and built[0] == served:
        return built[1]
    document = build_document(served)
    with _BUILT_LOCK:
        _BUILT[registry] = (served, document)
    return document


def build_document(served: Served) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the public API serving ``served``."""
    listed = endpoints(served)
    found = [model for *_, requests, responses, _ in listed for model in requests + responses]
    # Sorted by name, ties in the endpoints' order: two models whose names differ only in
    # separators or case ("pair-rater", "pair_rater") have schemas of one name, which pydantic
    # numbers in this order; a set's order (by id) numbered them differently in each worker.
    unique: dict[type[BaseModel], None] = dict.fromkeys([*found, schemas.ErrorResponse])
    ordered = sorted(unique, key=lambda model: model.__name__)
    refs, top = models_json_schema([(model, "validation") for model in ordered], ref_template=REF)

    def content(chosen: list[type[BaseModel]]) -> dict[str, Any]:
        items = [refs[(model, "validation")] for model in chosen]
        if len(items) == 1:
            return {"application/json": {"schema": items[0]}}
        # A single body and a batch body exclude each other (oneOf); several versions' bodies
        # of a pinned path overlap (a version 1 answer may fit version 2's schema too), and
        # oneOf would refuse a body matching two: anyOf.
        combine = "oneOf" if len(items) == 2 else "anyOf"
        return {"application/json": {"schema": {combine: items}}}

    paths: dict[str, Any] = {}
    error = {"content": content([schemas.ErrorResponse])}
    for path, method, summary, requests, responses, parameters in listed:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": content(responses)},
                **{code: {"description": text, **error} for code, text in ERROR_STATUSES.items()},
            },
        }
        if requests:
            operation["requestBody"] = {"required": True, "content": content(requests)}
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(path, {})[method] = operation
    for path, (summary, statuses) in PLAIN_ENDPOINTS.items():
        failures = {code: {"description": text, **error} for code, text in statuses.items()}
        paths[path] = {
            "get": {"summary": summary, "responses": {"200": {"description": "OK"}, **failures}}
        }
    for name, *_ in served:
        paths.update(_architecture_paths(name, error))
    return {
        "openapi": "3.1.0",
        "info": {"title": "multihead-serving gateway", "version": "1"},
        "paths": paths,
        "components": {"schemas": top.get("$defs", {})},
    }


def _architecture_paths(name: str, error: dict[str, Any]) -> dict[str, Any]:
    """The routed version's ``model.png`` and ``summary.txt`` (serving/gateway/architecture.py)."""
    found = {}
    for extension, media, what in (
        ("png", "image/png", "architecture picture (keras.utils.plot_model)"),
        ("txt", "text/plain", "layer summary (model.summary)"),
    ):
        found[f"{model_url_path(name)}/architecture.{extension}"] = {
            "get": {
                "summary": f"{name}: the routed version's {what}",
                "parameters": QUERY_PINS,
                "responses": {
                    "200": {"description": "OK", "content": {media: {}}},
                    "404": {"description": "No such file for this version", **error},
                    "416": {"description": "Range past the end (Content-Range set)", **error},
                    "422": {"description": "Invalid version pin or unknown query key", **error},
                    "503": {"description": "No version of the model fits", **error},
                },
            }
        }
    return found
