"""What every view shares: the blueprint, query keys, validation errors and version pins.

The request body is read in :mod:`serving.gateway.request_body`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Request, Response, current_app, jsonify, request
from pydantic import BaseModel, ValidationError
from werkzeug.http import parse_range_header
from werkzeug.routing import BaseConverter

from serving.gateway.backends import VersionSelector
from serving.gateway.errors import GatewayError, echo
from serving.gateway.exchange import Exchange, current_exchange
from serving.gateway.inference import Services
from serving.gateway.request_models import LIMIT_ERROR
from serving.gateway.word_rules import ENCODINGS
from serving.windows import Encodings

Model = TypeVar("Model", bound=BaseModel)
View = TypeVar("View", bound=Callable[..., Any])
MAX_VERSION = 2**63 - 1  # ModelSpec.version is an int64
# ASCII digits only: str.isdigit() also accepts "²" and other digits int() refuses.
VERSION_PATTERN = re.compile(r"^[0-9]{1,19}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DETAILS = 20
PIN_KEYS = ("version", "label")
# Pydantic's messages for these name the generated model class ("... instance of QARequest"):
# clients get the rule instead (the fields are in "loc").
CLASS_MESSAGES = {
    "model_type": "Input should be a JSON object",
    "model_attributes_type": "Input should be a JSON object",
    "dataclass_type": "Input should be a JSON object",
    "dataclass_exact_type": "Input should be a JSON object",
}

blueprint = Blueprint("gateway", __name__)


class SegmentConverter(BaseConverter):
    """A ``<part>`` of a route: any text without ``/`` or ``:``, as TF Serving's REST handler
    matches a model name and a label (``/v1/models/([^/:]+)...:(classify|regress|predict)``).

    ``:`` starts the verb: with werkzeug's default converter (any text without ``/``),
    ``GET /v1/models/<name>`` also matched ``qa:predict`` and ``qa:classify``, so a POST to
    a verb the gateway does not serve was a 405 (as if only the method were wrong) and the
    ``Allow`` of ``:predict`` listed GET. ``create_app`` makes it the URL map's default.
    """

    regex = "[^/:]+"


# view function -> (the query keys it reads, a hint for any other key, the model it answers
# for when its URL does not name one); see takes_query.
_QUERY_KEYS: dict[Callable[..., Any], tuple[tuple[str, ...], str, str]] = {}


def takes_query(*keys: str, hint: str = "", model: str = "") -> Callable[[View], View]:
    """Declare the query keys a view reads: any other key is a 422 (:func:`refuse_unknown_query`).

    A view without this declaration takes no query keys. ``hint`` is added to the message;
    ``model``: the model the view answers for (the aliases), else its URL's ``<name>``.
    """

    def declare(view: View) -> View:
        _QUERY_KEYS[view] = (keys, hint, model)
        return view

    return declare


def refuse_unknown_query() -> None:
    """Before every view: 422 for a query key the view does not read (a ``before_request``).

    One rule for every endpoint: a key that would be silently ignored (``/v1/qa?versoin=2``)
    is refused with ``{"loc": ["query", key], "type": "unexpected_parameter"}``.
    """
    current = current_request()
    if not current.args or current.routing_exception is not None:
        return  # no path or method matched: the 404 / 405 says more than the query would
    view = current_app.view_functions.get(current.endpoint or "")
    keys, hint = _QUERY_KEYS[view][:2] if view in _QUERY_KEYS else ((), "")
    takes = f"this endpoint takes {', '.join(keys)}" if keys else "this endpoint takes none"
    detail = [
        {
            "loc": ["query", echo(key)],
            "msg": f"unknown query parameter: {takes}{'; ' + hint if hint else ''}",
            "type": "unexpected_parameter",
        }
        for key in current.args
        if key not in keys
    ]
    if detail:
        exchange().model = route_model()  # a per-model endpoint's refusal counts under it
        raise GatewayError(422, "unknown query parameter", detail[:MAX_DETAILS])


def route_model() -> str:
    """The configured model the matched route answers for (an alias's own, else its URL's
    ``<name>``), else ``""``: a metrics label is never made of a URL segment that names no
    configured model (a client could make one series per name)."""
    current = current_request()
    view = current_app.view_functions.get(current.endpoint or "")
    model = _QUERY_KEYS[view][2] if view in _QUERY_KEYS else ""
    model = model or str((current.view_args or {}).get("name", ""))
    return model if model in services().registry.models else ""


blueprint.before_request(refuse_unknown_query)


def services() -> Services:
    """The app's services (settings, backend, registry, metrics)."""
    found: Services = current_app.extensions["gateway"]
    return found


def current_request() -> Request:
    """The request being answered, looked up once.

    Every read through Flask's ``request`` proxy looks the context up again (four calls): a
    function that reads several attributes binds the object once (werkzeug's documented
    ``LocalProxy._get_current_object``).
    """
    found: Request = request._get_current_object()  # type: ignore[attr-defined]
    return found


def validation_error(error: ValidationError, prefix: tuple[str, ...] = ()) -> GatewayError:
    """A 422 whose details give each failing field's path (the input itself is not echoed).

    A size limit gives ``type: "limit_exceeded"`` and ``limit: {"name", "value"}``.
    """
    errors = error.errors(include_url=False, include_input=False)
    detail = []
    # Only the details sent are built: a body of 85,000 unknown keys has as many errors, and
    # shaping each (its key echoed) was most of the CPU such a request cost.
    for item in errors[:MAX_DETAILS]:
        entry: dict[str, Any] = {
            # A key of the body (an unexpected field) is client text: echoed cut.
            "loc": [*prefix, *(echo(key) if isinstance(key, str) else key for key in item["loc"])],
            "msg": CLASS_MESSAGES.get(item["type"], item["msg"]),
            "type": item["type"],
        }
        if item["type"] == LIMIT_ERROR:
            context = item.get("ctx", {})
            entry["limit"] = {"name": context.get("name"), "value": context.get("limit")}
        detail.append(entry)
    limits_only = all(item["type"] == LIMIT_ERROR for item in errors)
    message = "the request exceeds a size limit" if limits_only else "the request is invalid"
    return GatewayError(422, message, detail)


def parse(model: type[Model], payload: Any, known: Encodings | None = None) -> Model:
    """Validate a payload against a request model (422 on failure).

    ``known`` receives the whole encodings of the text inputs tokenised by the ``no_words``
    check (:data:`serving.gateway.word_rules.ENCODINGS`), for the request's encoding.
    """
    context = None if known is None else {ENCODINGS: known}
    try:
        return model.model_validate(payload, context=context)
    except ValidationError as error:
        raise validation_error(error, ("body",)) from error


def parse_version(text: str, where: list[str]) -> int:
    """A version number: 1 to 19 ASCII digits, else 422 naming ``where``.

    A number that no version can have (above int64's 2**63-1) is a 404 like any version that
    is not served (the documented pattern is ``^[0-9]{1,19}$``). 0 is a version: TF Serving
    (``file_system_storage_path_source.cc``, ``ParseVersionNumber``: any int64 >= 0) and the
    local model server load a folder ``0``, and the gateway routes it when it is the latest.
    """
    if not VERSION_PATTERN.fullmatch(text):  # fullmatch: "$" would let "1\n" in
        raise GatewayError(
            422,
            "invalid version pin",
            [{"loc": where, "msg": "must be 1 to 19 ASCII digits", "type": "invalid_version"}],
        )
    if int(text) > MAX_VERSION:
        raise GatewayError(404, "the requested model version is not served")
    return int(text)


def parse_label(text: str, where: list[str]) -> str:
    """A version label (``[A-Za-z0-9_.-]{1,64}``), else 422 naming ``where``."""
    if not LABEL_PATTERN.fullmatch(text):
        raise GatewayError(
            422,
            "invalid version pin",
            [{"loc": where, "msg": "must match [A-Za-z0-9_.-]{1,64}", "type": "invalid_label"}],
        )
    return text


def query_value(key: str) -> str | None:
    """The one value of query parameter ``key`` (None if absent; 422 if repeated).

    A repeated key (``?version=1&version=2``) is refused rather than resolved to either value,
    as proxies and frameworks disagree on which one wins.
    """
    values = request.args.getlist(key)
    if len(values) > 1:
        raise GatewayError(
            422,
            "invalid query",
            [{"loc": ["query", key], "msg": "give this parameter once", "type": "repeated"}],
        )
    return values[0] if values else None


def query_selector() -> VersionSelector:
    """The version pin from ``?version=N`` / ``?label=L`` (422 if malformed, repeated or both)."""
    version_text = query_value("version")
    label = query_value("label")
    if version_text is not None and label is not None:
        raise GatewayError(
            422,
            "invalid version pin",
            [{"loc": ["query"], "msg": "give version or label", "type": "conflicting_pins"}],
        )
    if version_text is not None:
        return VersionSelector(version=parse_version(version_text, ["query", "version"]))
    if label is not None:
        return VersionSelector(label=parse_label(label, ["query", "label"]))
    return VersionSelector()


def ignore_unusable_range() -> None:
    """Before a file is sent: drop a ``Range`` header that is not one byte range.

    RFC 9110 section 14.2: a server may ignore any Range and must ignore one whose unit it
    does not know; werkzeug's ``send_file`` answers such a header (``garbage``, several
    ranges) 416, so the whole file is sent instead. One range past the end stays a 416.
    """
    environ = current_request().environ
    value = environ.get("HTTP_RANGE")
    if value is not None:
        parsed = parse_range_header(value)
        if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
            del environ["HTTP_RANGE"]


def respond(body: dict[str, Any]) -> Response:
    """Serialise an answer (the model and version are already noted on the exchange)."""
    return jsonify(body)


def exchange() -> Exchange:
    """The request being answered (:mod:`serving.gateway.exchange`); RuntimeError outside one."""
    found = current_exchange()
    if found is None:
        raise RuntimeError("no request is being answered")
    return found
