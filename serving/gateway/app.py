"""The Flask app factory (gunicorn: ``"serving.gateway.app:create_app()"``)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, jsonify
from flask.sessions import NullSession, SessionInterface
from werkzeug.exceptions import HTTPException

from serving.gateway.access import install_access_control
from serving.gateway.backends import Backend, make_backend
from serving.gateway.docs_ui import blueprint as docs_ui_blueprint
from serving.gateway.errors import GatewayError
from serving.gateway.inference import Services
from serving.gateway.logs import LOGGER_NAME, configure_logging
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.registry import ModelRegistry
from serving.gateway.settings import GatewaySettings
from serving.gateway.strict_json import StrictJSONProvider
from serving.gateway.views import blueprint
from serving.gateway.web import current_request, request_globals, services

ACCESS_LOGGER = logging.getLogger(f"{LOGGER_NAME}.access")
MAX_REQUEST_ID_LENGTH = 128
# Headers of werkzeug's HTTP errors that belong to the status: 405's Allow, and 416's
# "Content-Range: bytes */LENGTH" (RFC 9110 section 15.5.17), from send_file's range checks.
KEPT_ERROR_HEADERS = frozenset({"Allow", "Content-Range"})


class NoSessions(SessionInterface):
    """The gateway keeps no sessions: one shared read-only ``NullSession``, nothing saved.

    Flask's default interface builds a signing serializer and a new ``NullSession`` per
    request (no secret key is set) only to find there is no session.
    """

    def __init__(self) -> None:
        self._null = NullSession()

    def open_session(self, app: Flask, request: Request) -> NullSession:
        """The shared empty session (writing to it raises, as Flask's null session does)."""
        return self._null

    def is_null_session(self, obj: object) -> bool:
        """Always: there is nothing to save."""
        return True

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        """Nothing to save."""


class GatewayFlask(Flask):
    """Flask with per-request work done once (issue 9): no sessions, and ``ensure_sync``'s
    check of a view, hook or error handler (``inspect.iscoroutinefunction``) cached per
    function; a coroutine function still gets Flask's ``async_to_sync`` wrapper."""

    session_interface = NoSessions()

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's ``ensure_sync``, looked up once per function."""
        found = self._sync.get(func)
        if found is None:
            found = self._sync[func] = super().ensure_sync(func)
        return found


def create_app(settings: GatewaySettings | None = None, backend: Backend | None = None) -> Flask:
    """Build a gateway app; the backend connects lazily, the version poller starts lazily."""
    settings = settings or GatewaySettings()
    configure_logging(settings.log_level)
    backend = backend or make_backend(settings)
    registry = ModelRegistry(backend, settings)
    app = GatewayFlask("serving.gateway")
    app.json = StrictJSONProvider(app)  # no NaN/Infinity tokens in any response
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["gateway"] = Services(settings, backend, registry, GatewayMetrics())
    app.register_blueprint(blueprint)
    app.register_blueprint(docs_ui_blueprint)
    app.before_request(_before_request)
    install_access_control(app, settings)  # after _before_request: errors carry the request id
    app.after_request(_after_request)
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _request_id(current: Request) -> str:
    given = current.headers.get("X-Request-ID", "")
    if 0 < len(given) <= MAX_REQUEST_ID_LENGTH and given.isprintable() and given.isascii():
        return given
    return uuid.uuid4().hex


def _before_request() -> None:
    state = request_globals()  # one context lookup for the four writes
    state.start = time.perf_counter()
    state.request_id = _request_id(current_request())
    state.model = ""
    state.version = ""
    services().registry.start()


def _after_request(response: Response) -> Response:
    state, current = request_globals(), current_request()  # one context lookup each
    seconds = time.perf_counter() - state.get("start", time.perf_counter())
    response.headers["X-Request-ID"] = state.get("request_id", "")
    rule, method, path = current.url_rule, current.method, current.path
    endpoint = rule.rule if rule is not None else "unmatched"
    model, version = state.get("model", ""), state.get("version", "")
    status = response.status_code
    services().metrics.observe_request(endpoint, model, version, status, seconds)
    if ACCESS_LOGGER.isEnabledFor(logging.INFO):  # skip building the fields when not logged
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "model": model,
            "version": version,
        }
        # makeRecord + handle: Logger.info's findCaller walks the stack for a file and line
        # that the JSON lines do not show.
        record = ACCESS_LOGGER.makeRecord(
            ACCESS_LOGGER.name,
            logging.INFO,
            "",
            0,
            "%s %s %d",
            (method, path, status),
            None,
            extra={"fields": fields},
        )
        ACCESS_LOGGER.handle(record)
    return response


def _error_response(error: GatewayError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error.body()), error.status, error.headers


def _gateway_error(error: GatewayError) -> tuple[Response, int, dict[str, str]]:
    return _error_response(error)


def _http_error(error: HTTPException) -> tuple[Response, int, dict[str, str]]:
    status = error.code or 500
    headers = {key: value for key, value in error.get_headers() if key in KEPT_ERROR_HEADERS}
    message = {
        413: "the body exceeds the limit max_body_bytes",
        429: f"rate limit exceeded: {error.description}",
    }.get(status, error.description or "")
    return _error_response(GatewayError(status, message or str(error.name), headers=headers))


def _unexpected_error(error: Exception) -> tuple[Response, int, dict[str, str]]:
    logging.getLogger(LOGGER_NAME).exception("unexpected error")
    return _error_response(GatewayError(500, "internal error"))
