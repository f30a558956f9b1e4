"""TF Serving's REST API (``/v1/models/...``) plus liveness, readiness and metrics URLs."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import grpc
from flask import Flask, Response, request
from google.protobuf.json_format import MessageToDict
from werkzeug.exceptions import ClientDisconnected, MethodNotAllowed, RequestEntityTooLarge

from serving.modelserver.errors import (
    INTERNAL_MESSAGE,
    ServingError,
    invalid_argument,
    logged_request_id,
    not_found,
)
from serving.modelserver.grpc_service import MAX_MESSAGE_BYTES, model_status_response
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.predict import predict_on
from serving.modelserver.rest_body import (
    DecompressedTooLargeError,
    check_text,
    parse_json_body,
    request_body,
)
from serving.modelserver.rest_json import parse_predict_body, render_outputs
from serving.numbers import parse_version
from serving.plain_http import PlainHttpFlask

LOG = logging.getLogger(__name__)
# TF Serving's own URL patterns (http_rest_api_util.cc, kPredictionApiGegex and
# kModelStatusApiRegex), matched case-insensitively on the whole path.
PREDICT_PATH = re.compile(
    r"/v1/models/(?P<name>[^/:]+)(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?"
    r":(?P<verb>classify|regress|predict)",
    flags=re.IGNORECASE | re.ASCII,
)
STATUS_PATH = re.compile(
    r"/v1/models(?:/(?P<name>[^/:]+))?(?:(?:/versions/(?P<version>\d+))|(?:/labels/(?P<label>[^/:]+)))?"
    r"(?:/(?P<metadata>metadata))?",
    flags=re.IGNORECASE | re.ASCII,
)
UNIMPLEMENTED_VERBS = ("classify", "regress")
INCOMPLETE_BODY = "The request body ended before its end: the client stopped sending it"


def json_response(payload: Any, status: int = 200) -> Response:
    """A JSON response (TF Serving pretty-prints; clients only parse it)."""
    return Response(json.dumps(payload) + "\n", status=status, mimetype="application/json")


def error_response(error: ServingError) -> Response:
    """TF Serving's error body with the status code mapped to HTTP."""
    return json_response({"error": error.message}, error.http_status)


class RestHandlers:
    """Handlers for one server's REST routes."""

    def __init__(
        self, manager: ModelManager, metrics: ServerMetrics, timeout_seconds: float | None = None
    ) -> None:
        self._manager = manager
        self._metrics = metrics
        self._timeout = timeout_seconds

    def dispatch(self, path: str = "") -> Response:
        """Route a ``/v1/...`` request as TF Serving does, timing and counting the call."""
        started = time.perf_counter()
        name, version, api = "", "", "rest_other"
        try:
            api, handler, match = self._pick(request.method, request.path)
            name = match.group("name") or ""
            payload, version = handler(match)
            status = 200
            response = json_response(payload)
        except ServingError as error:
            status, response = error.http_status, error_response(error)
        except DecompressedTooLargeError as error:
            status, response = 413, json_response({"error": error.description}, 413)
        except RequestEntityTooLarge:  # a body past MAX_MESSAGE_BYTES, refused before reading
            status = 413
            response = json_response(
                {"error": f"The request body is larger than {MAX_MESSAGE_BYTES} bytes"}, status
            )
        except ClientDisconnected:
            # The body stopped short: the client closed, or sent nothing for cheroot's timeout
            # (werkzeug's wrap of the socket's error). The client's doing: no 500, no traceback.
            status = 400
            response = json_response({"error": INCOMPLETE_BODY}, status)
        except Exception:  # a bug still answers in TF Serving's shape, details only in the log
            # The path is the client's (decoded: %0A is a newline): quoted and escaped.
            LOG.exception(
                "%s %r failed (request id %s)",
                request.method,
                request.path,
                logged_request_id(request.headers.get("X-Request-ID")),
            )
            status = 500
            response = json_response({"error": INTERNAL_MESSAGE}, 500)
        if status != 200 and name not in self._manager.model_names():
            name = ""  # a name from the URL is a new series for life: only configured ones
        self._metrics.observe_request(
            name, version, api, str(status), time.perf_counter() - started
        )
        return response

    def _pick(
        self, method: str, path: str
    ) -> tuple[str, Callable[[re.Match[str]], tuple[Any, str]], re.Match[str]]:
        if method == "POST" and (match := PREDICT_PATH.fullmatch(path)):
            _version(match)  # a version past int64 is a 400 before anything else
            verb = match.group("verb")
            if verb == "predict":
                return "rest_predict", self._predict, match
            if verb in UNIMPLEMENTED_VERBS:
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED,
                    f"{verb.capitalize()} is not implemented by this model server; use :predict",
                )
        if method == "GET" and (match := STATUS_PATH.fullmatch(path)):
            _version(match)
            if not match.group("name"):
                raise invalid_argument("Missing model name in request.")
            if match.group("metadata") == "metadata":
                return "rest_metadata", self._metadata, match
            if match.group("metadata") is None:
                return "rest_status", self._status, match
        raise invalid_argument(f"Malformed request: {method} {path}")

    def _predict(self, match: re.Match[str]) -> tuple[Any, str]:
        data = request_body(request)
        body = parse_json_body(data)
        state = self._resolve(match)
        assert state.servable is not None
        signature = body.get("signature_name", "") if isinstance(body, dict) else ""
        if not isinstance(signature, str):
            raise invalid_argument("'signature_name' key must be a string value.")
        check_text(signature)
        specs = state.servable.input_specs(signature)
        # JSON true/false (or UTF-16/32, whose ASCII has NUL bytes) read number by number
        booleans = b"true" in data or b"false" in data or b"\x00" in data
        inputs, row_format = parse_predict_body(body, specs, booleans)
        # --rest_api_timeout_in_ms: TF Serving sets it as the run's RunOptions.timeout_in_ms,
        # counted from the run (the body read and parsed); here it is a gRPC call's deadline.
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        result = predict_on(state, inputs, signature_name=signature, deadline=deadline)
        return render_outputs(result.outputs, row_format), str(result.version)

    def _status(self, match: re.Match[str]) -> tuple[Any, str]:
        version = _version(match)
        if match.group("label"):
            version = self._resolve(match).version
        response = model_status_response(self._manager, match.group("name"), version)
        return _to_dict(response), "" if version is None else str(version)

    def _metadata(self, match: re.Match[str]) -> tuple[Any, str]:
        state = self._resolve(match)
        assert state.servable is not None
        signature_defs = {
            key: _to_dict(value) for key, value in sorted(state.servable.signature_defs.items())
        }
        payload = {
            "model_spec": {
                "name": match.group("name"),
                "signature_name": "",
                "version": str(state.version),
            },
            "metadata": {"signature_def": {"signature_def": signature_defs}},
        }
        return payload, str(state.version)

    def _resolve(self, match: re.Match[str]) -> Any:
        return self._manager.resolve(
            match.group("name"), _version(match), match.group("label") or ""
        )


def _version(match: re.Match[str]) -> int | None:
    text = match.group("version")
    if not text:
        return None
    version = parse_version(text)
    if version is None:  # past int64: TF Serving's absl::SimpleAtoi fails the same way
        raise invalid_argument(f"Failed to convert version: {text} to numeric.")
    return version


def _to_dict(message: Any) -> dict[str, Any]:
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def create_rest_app(
    manager: ModelManager,
    metrics: ServerMetrics,
    metrics_path: str,
    is_ready: Callable[[], bool],
    timeout_seconds: float | None = None,
) -> Flask:
    """The Flask app served on the REST port; ``timeout_seconds``: each predict's deadline
    (``--rest_api_timeout_in_ms``; None: none), DEADLINE_EXCEEDED (504) past it."""
    app = PlainHttpFlask("modelserver")  # Upgrade: websocket ignored, as TF Serving
    # Before the rules are added (a rule takes the map's setting when it is bound): merging
    # slashes answered '/v1//models/qa' with a 308 HTML page redirecting to the client's Host
    # header; TF Serving's URL patterns do not match such a path (the gateway's app alike).
    app.url_map.merge_slashes = False
    # gRPC's message limit for REST bodies too: a JSON body is read whole, and its numbers
    # as Python objects take several times its size (a 2 GB upload would take the server).
    app.config["MAX_CONTENT_LENGTH"] = MAX_MESSAGE_BYTES
    handlers = RestHandlers(manager, metrics, timeout_seconds)

    def route(rule: str, endpoint: str, view: Callable[..., Response], **options: Any) -> None:
        # Flask answered OPTIONS itself, an empty text/html 200; every answer of this server
        # is JSON: OPTIONS is a method no route takes (405 with its Allow header).
        app.add_url_rule(rule, endpoint, view, provide_automatic_options=False, **options)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    route("/v1", "v1_root", handlers.dispatch, methods=methods)
    route("/v1/<path:path>", "v1", handlers.dispatch, methods=methods)

    def liveness() -> Response:
        return json_response({"status": "alive"})

    def readiness() -> Response:
        ready = is_ready()
        return json_response({"ready": ready}, 200 if ready else 503)

    def render_metrics() -> Response:
        return Response(metrics.render(), mimetype="text/plain; version=0.0.4")

    def unknown_path(error: Exception) -> Response:
        return error_response(not_found(f"Malformed request: {request.method} {request.path}"))

    def unknown_method(error: MethodNotAllowed) -> Response:
        # Flask's own 405 is an HTML page; every answer of this server is {"error": ...}
        response = json_response(
            {"error": f"Malformed request: {request.method} {request.path}"}, 405
        )
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))
        return response

    route("/healthz", "healthz", liveness)
    route("/readyz", "readyz", readiness)
    route(metrics_path, "metrics", render_metrics)
    if metrics_path != "/metrics":
        route("/metrics", "metrics_alias", render_metrics)
    app.register_error_handler(404, unknown_path)
    app.register_error_handler(MethodNotAllowed, unknown_method)
    return app
