"""What every view shares: the blueprint, body parsing, validation errors and version pins."""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from serving.gateway.backends import VersionSelector
from serving.gateway.errors import GatewayError
from serving.gateway.inference import Services
from serving.gateway.request_models import LIMIT_ERROR

Model = TypeVar("Model", bound=BaseModel)
MAX_VERSION = 2**63 - 1  # ModelSpec.version is an int64
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
VERSION_PATTERN = re.compile(r"^[0-9]{1,19}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DETAILS = 20

blueprint = Blueprint("gateway", __name__)


def services() -> Services:
    """The app's services (settings, backend, registry, metrics)."""
    found: Services = current_app.extensions["gateway"]
    return found


def validation_error(error: ValidationError, prefix: tuple[str, ...] = ()) -> GatewayError:
    """A 422 whose details give each failing field's path (the input itself is not echoed).

    A size limit gives ``type: "limit_exceeded"`` and ``limit: {"name", "value"}``.
    """
    detail = []
    for item in error.errors(include_url=False, include_input=False):
        entry: dict[str, Any] = {
            "loc": [*prefix, *item["loc"]],
            "msg": item["msg"],
            "type": item["type"],
        }
        if item["type"] == LIMIT_ERROR:
            context = item.get("ctx", {})
            entry["limit"] = {"name": context.get("name"), "value": context.get("limit")}
        detail.append(entry)
    limits_only = all(entry["type"] == LIMIT_ERROR for entry in detail)
    message = "the request exceeds a size limit" if limits_only else "the request is invalid"
    return GatewayError(422, message, detail[:MAX_DETAILS])


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


def parse_version(text: str, where: list[str]) -> int:
    """A version number: ASCII digits, 1..2**63-1, else 422 naming ``where``."""
    if not (VERSION_PATTERN.match(text) and 0 < int(text) <= MAX_VERSION):
        raise GatewayError(
            422, "invalid version pin", [{"loc": where, "msg": "must be a positive integer"}]
        )
    return int(text)


def parse_label(text: str, where: list[str]) -> str:
    """A version label (``[A-Za-z0-9_.-]{1,64}``), else 422 naming ``where``."""
    if not LABEL_PATTERN.match(text):
        raise GatewayError(
            422, "invalid version pin", [{"loc": where, "msg": "must match [A-Za-z0-9_.-]{1,64}"}]
        )
    return text


def query_selector() -> VersionSelector:
    """The version pin from ``?version=N`` / ``?label=L`` (422 if malformed or both)."""
    version_text = request.args.get("version")
    label = request.args.get("label")
    if version_text is not None and label is not None:
        raise GatewayError(
            422, "invalid version pin", [{"loc": ["query"], "msg": "give version or label"}]
        )
    if version_text is not None:
        return VersionSelector(version=parse_version(version_text, ["query", "version"]))
    if label is not None:
        return VersionSelector(label=parse_label(label, ["query", "label"]))
    return VersionSelector()


def respond(body: dict[str, Any], model: str, version: int) -> Response:
    """Serialise an answer and note the model and version for metrics and logs."""
    g.model, g.version = model, str(version)
    return jsonify(body)
