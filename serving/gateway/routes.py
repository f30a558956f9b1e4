"""The generic endpoints (TF Serving's URL scheme) and the model listings.

``POST /v1/models/<name>[/versions/<v>|/labels/<label>]:predict`` takes ``{"inputs": {...}}``
(answer ``{"outputs": {head field: value}, "model"}``) or ``{"instances": [...]}`` (answer
``{"predictions": [...], "model"}``), validated by the version's generated models.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from serving.gateway import inference
from serving.gateway.backends import TensorSpec, VersionSelector
from serving.gateway.errors import BackendError, GatewayError
from serving.gateway.exchange import Exchange
from serving.gateway.inference import Call, Prepared, Services
from serving.gateway.model_state import ModelState
from serving.gateway.request_body import read_json
from serving.gateway.runtime import ModelRuntime
from serving.gateway.schemas import ModelDetail, ModelInfo, ModelsResponse, VersionInfo
from serving.gateway.web import (
    blueprint,
    exchange,
    parse,
    parse_label,
    parse_version,
    respond,
    services,
    takes_query,
)
from serving.windows import Encodings

# TF Serving's scheme pins in the path; a silently ignored ?version= would answer from another
# version than the one the client asked for (every query key is refused: web.takes_query).
PATH_PINS = "pin a version in the path: /versions/{v}:predict or /labels/{l}:predict"


@blueprint.post("/v1/models/<name>:predict")
@takes_query(hint=PATH_PINS)
def predict(name: str) -> Response:
    """Predict with the routed version."""
    note_model(services(), exchange(), name)
    return _predict(name, VersionSelector())


@blueprint.post("/v1/models/<name>/versions/<version>:predict")
@takes_query(hint=PATH_PINS)
def predict_version(name: str, version: str) -> Response:
    """Predict with a pinned version (ASCII digits, int64)."""
    note_model(services(), exchange(), name)
    return _predict(name, VersionSelector(version=parse_version(version, ["path", "version"])))


@blueprint.post("/v1/models/<name>/labels/<label>:predict")
@takes_query(hint=PATH_PINS)
def predict_label(name: str, label: str) -> Response:
    """Predict with the version a TF Serving label points to."""
    note_model(services(), exchange(), name)
    return _predict(name, VersionSelector(label=parse_label(label, ["path", "label"])))


def prepare(runtime: ModelRuntime, payload: Any) -> Prepared:
    """Validate a generic body against the version's models: instances and their top_k."""
    known = Encodings()
    if isinstance(payload, dict) and {"instances", "inputs"} <= payload.keys():
        # pydantic's answer, "Extra inputs are not permitted" at ["body", "inputs"], read as
        # if the instance had too many input fields.
        raise GatewayError(
            422,
            "the request is invalid",
            [
                {
                    "loc": ["body"],
                    "msg": "give inputs (one instance) or instances (a batch), not both",
                    "type": "conflicting_fields",
                }
            ],
        )
    if isinstance(payload, dict) and "instances" in payload:
        batch = parse(runtime.models.batch, payload, known)
        items = list(getattr(batch, "instances"))  # noqa: B009
        top_k = getattr(batch, "top_k")  # noqa: B009
    else:
        single = parse(runtime.models.single, payload, known)
        items, top_k = [getattr(single, "inputs")], getattr(single, "top_k")  # noqa: B009
    values = runtime.models.values
    return Prepared([values(item) for item in items], [top_k] * len(items), known)


def note_model(found: Services, exchange: Exchange, name: str) -> None:
    """Label the request with model ``name`` (metrics, access line) if it is configured.

    Called before the pin and the body are read, so a request refused there (400, 413, 415,
    422) counts under its model like any other answer of a per-model endpoint; an unknown
    name never becomes a label (a client could make any number of them).
    """
    if name in found.registry.models:
        exchange.model = name


def predict_answer(
    found: Services, exchange: Exchange, name: str, selector: VersionSelector, payload: Any
) -> dict[str, Any]:
    """The ``:predict`` answer of model ``name`` to a parsed body (``inputs`` or ``instances``).

    Notes the model (a configured one only: a metrics label is never an unknown URL segment)
    and the version that answered on ``exchange``. Raises GatewayError as
    :func:`serving.gateway.inference.predict`.
    """
    note_model(found, exchange, name)
    call = Call(selector, exchange.request_id)
    predicted = inference.predict(found, name, call, lambda runtime: prepare(runtime, payload))
    version = predicted.runtime.version
    exchange.model, exchange.version = name, str(version)
    reference = {"name": name, "version": version}
    if isinstance(payload, dict) and "instances" in payload:
        return {"predictions": predicted.answers, "model": reference}
    return {"outputs": predicted.answers[0], "model": reference}


def _predict(name: str, selector: VersionSelector) -> Response:
    payload = read_json()
    return respond(predict_answer(services(), exchange(), name, selector, payload))


@blueprint.get("/v1/models")
def models() -> Response:
    """Every model's versions, states (with why a version is not routed) and signature."""
    found = services()
    states = found.registry.refresh_models(found.registry.reload_models())
    infos = [model_info(found, name, state) for name, state in states.items()]
    return jsonify(ModelsResponse(models=infos).model_dump(mode="json"))


@blueprint.get("/v1/models/<name>")
def model(name: str) -> Response:
    """One model: versions, states, signature and the routed version's serving spec."""
    found = services()
    found.registry.require_known(name)
    exchange().model = name  # a metrics label: a configured model's name only
    info = model_info(found, name)
    routed = found.registry.state(name).routed
    detail = ModelDetail(
        **info.model_dump(),
        spec=routed.describe() if routed else None,
        legacy=routed.legacy if routed else None,
    )
    return jsonify(detail.model_dump(mode="json"))


def model_info(found: Services, name: str, state: ModelState | None = None) -> ModelInfo:
    """Versions (state, short reason, tokenizer hash, routed) and the routed signature.

    ``state``: the model's state if just refreshed (else it is refreshed now). The signature
    is asked only of a server that just answered the status call: a down or hung one would
    make the listing wait a second deadline.
    """
    state = state or found.registry.refresh_model(name)
    routed = state.routed.version if state.routed else None
    versions = []
    for status in state.statuses:
        hashes: dict[str, str] = {}
        if status.state == "AVAILABLE" and status.version not in state.unfit:
            try:
                hashes = dict(found.registry.runtime(name, status.version).tokenizer_sha256)
            except GatewayError:
                hashes = {}
        # The server's own error text stays in its logs: clients get a short reason.
        error = state.unfit.get(status.version, "")
        if not error and status.error:
            error = "the model server reports an error for this version"
        versions.append(
            VersionInfo(
                version=status.version,
                state=status.state,
                error=error,
                # One digest names the tokenizer only when the version has one (it named the
                # first of several, so a version whose second tokenizer changed looked alike).
                tokenizer_sha256=next(iter(hashes.values())) if len(hashes) == 1 else None,
                tokenizers_sha256=hashes,
                routed=status.version == routed,
            )
        )
    signature: dict[str, object] | None = None
    error = state.error
    if state.routed is not None and state.backend_answered:
        try:
            spec = state.routed.spec  # the signature the gateway calls: the spec's
            selector = VersionSelector(version=routed, signature_name=spec.signature_name)
            metadata = found.backend.model_metadata(name, selector)
            signature = {
                "inputs": _describe(metadata.inputs),
                "outputs": _describe(metadata.outputs),
            }
        except BackendError as failure:
            error = error or f"metadata: backend {failure.failure.value}"
    return ModelInfo(name=name, versions=versions, signature=signature, error=error or None)


def _describe(specs: dict[str, TensorSpec]) -> dict[str, object]:
    return {key: {"dtype": spec.dtype, "shape": list(spec.shape)} for key, spec in specs.items()}
