"""The Flask app factory (gunicorn: ``"serving.gateway.app:create_app()"``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response, current_app, g, jsonify
from flask.sessions import NullSession, SessionInterface
from flask.testing import FlaskClient
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from serving.gateway import fastpath
from serving.gateway.access import install_access_control
from serving.gateway.backends import Backend, make_backend
from serving.gateway.coalescing import Coalescer
from serving.gateway.docs_ui import blueprint as docs_ui_blueprint
from serving.gateway.errors import GatewayError, http_error, unexpected_error
from serving.gateway.exchange import (
    UNMATCHED,
    begin,
    current_exchange,
    elapsed,
    end,
    record,
    record_when_closed,
)
from serving.gateway.inference import Services
from serving.gateway.logs import configure_logging
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.registry import ModelRegistry
from serving.gateway.settings import GatewaySettings
from serving.gateway.strict_json import StrictJSONProvider
from serving.gateway.views import blueprint
from serving.gateway.web import SegmentConverter, current_request, route_model, services
from serving.plain_http import PlainHttpFlask


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


class ClosingClient(FlaskClient):
    """Flask's test client, buffered unless told otherwise. The gateway counts and logs an
    answer when it is closed (``exchange.delivered``), which a WSGI server does after writing
    it; unbuffered, Flask's client closes it only when the test does."""

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> Any:
        """Flask's ``open``, buffered by default."""
        return super().open(*args, buffered=buffered, **kwargs)


class GatewayFlask(PlainHttpFlask):
    """Flask with per-request work done once (issue 9): no sessions, and ``ensure_sync``'s
    check of a view, hook or error handler (``inspect.iscoroutinefunction``) cached per
    function; a coroutine function still gets Flask's ``async_to_sync`` wrapper. A WebSocket
    handshake is answered as plain HTTP (:mod:`serving.plain_http`)."""

    session_interface = NoSessions()
    test_client_class = ClosingClient

    def __init__(self, import_name: str) -> None:
        super().__init__(import_name)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Flask's ``ensure_sync``, looked up once per function."""
        found = self._sync.get(func)
        if found is None:
            found = self._sync[func] = super().ensure_sync(func)
        return found

    def make_default_options_response(self) -> Response:
        """``OPTIONS``: 204 with ``Allow`` and no body. Flask's is a 200 with an empty body
        labelled ``text/html``, which no JSON client can read (RFC 9110 section 9.3.7: an
        answer without content is 204 or says ``Content-Length: 0``)."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response


def create_app(settings: GatewaySettings | None = None, backend: Backend | None = None) -> Flask:
    """Build a gateway app; the backend connects lazily, the version poller starts lazily."""
    settings = settings or GatewaySettings()
    configure_logging(settings.log_level, settings.access_log_flush_seconds)
    backend = backend or make_backend(settings)
    registry = ModelRegistry(backend, settings)
    app = GatewayFlask("serving.gateway")
    app.json = StrictJSONProvider(app)  # no NaN/Infinity tokens in any response
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    # Before the rules are added: a rule takes the map's setting when it is bound. Merging
    # slashes answered '/v1//qa' with a 308 HTML page redirecting to the client's Host
    # header; an API client gets the 404 of a path that is not the API's.
    app.url_map.merge_slashes = False
    app.url_map.converters["default"] = SegmentConverter
    metrics = GatewayMetrics(settings.metrics_flush_seconds)
    coalescer = Coalescer(
        backend,
        metrics,
        settings.coalesce_max_rows,
        settings.coalesce_in_flight,
        settings.coalesce_max_hold_ms / 1000,
    )
    app.extensions["gateway"] = Services(settings, backend, registry, metrics, coalescer)
    app.register_blueprint(blueprint)
    app.register_blueprint(docs_ui_blueprint)
    app.before_request(_before_request)
    install_access_control(app, settings)  # after _before_request: errors carry the request id
    app.after_request(_after_request)
    app.teardown_request(_end_exchange)
    app.register_error_handler(GatewayError, _gateway_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    if settings.fast_path:
        fastpath.install(app, _before_request, _after_request, _end_exchange)
    return app


def _before_request() -> None:
    g.exchange_tokens = begin(current_request().environ)[1]  # undone in _end_exchange
    services().registry.start()


def _after_request(response: Response) -> Response:
    exchange = current_exchange()
    if exchange is None:  # a hook before ours failed: the request still counts and logs
        exchange, g.exchange_tokens = begin(current_request().environ)
    response.headers["X-Request-ID"] = exchange.request_id
    current = current_request()
    rule = current.url_rule
    endpoint = rule.rule if rule is not None else UNMATCHED
    if not exchange.model and rule is not None:
        # Answered before its view ran (a 401 of the key check, a 429 of the rate limit): a
        # per-model endpoint's answer still counts under its model, as its views' do (they
        # counted under model="", missing from every per-model error rate). Flask only: the
        # fast path is off when these hooks are set.
        exchange.model = route_model()
    status, seconds = response.status_code, elapsed(exchange)
    arguments = (services().metrics, exchange, endpoint, current.method, current.path, status)
    if response.direct_passthrough:
        # A file wrapper (the docs' static files) goes to the server as it is, without the
        # response's close hooks: counted before it is sent.
        record(*arguments, seconds)
    else:
        # Counted once written, as 499 if the client had gone (the fast path's Answered).
        response.call_on_close(record_when_closed(*arguments, seconds))
    return response


def _end_exchange(error: BaseException | None) -> None:
    tokens = g.pop("exchange_tokens", None)
    if tokens is not None:
        end(tokens)


def _error_response(error: GatewayError) -> tuple[Response, int, dict[str, str]]:
    return jsonify(error.body()), error.status, error.headers


def _gateway_error(error: GatewayError) -> tuple[Response, int, dict[str, str]]:
    return _error_response(error)


def _http_error(error: HTTPException) -> Any:
    # Two requests no route can match, told apart here, on the error path only (no cost to
    # any other request); both were a JSON 404 "The requested URL was not found".
    current = current_request()
    if current.method == "CONNECT" and isinstance(error, (NotFound, MethodNotAllowed)):
        # RFC 9110 section 9.3.6: CONNECT asks for a tunnel, which only a proxy opens; the
        # gateway supports it for no resource: 501 (section 15.6.2), not 404 or 405.
        return _error_response(
            GatewayError(501, "CONNECT is not supported: the gateway is no proxy")
        )
    if (
        current.method == "OPTIONS"
        and current.environ.get("RAW_URI") == "*"
        and isinstance(error, NotFound)
    ):
        return _server_options()
    return _error_response(http_error(error))


def _server_options() -> Response:
    """``OPTIONS *`` asks about the server in general (RFC 9110 section 9.3.7): 204 with the
    methods some resource of the gateway takes in ``Allow`` and no body, as the gateway's
    ``OPTIONS`` of a resource answers (:meth:`GatewayFlask.make_default_options_response`)."""
    methods = {method for rule in current_app.url_map.iter_rules() for method in rule.methods or ()}
    response = Response(status=204)
    response.headers["Allow"] = ", ".join(sorted(methods))
    del response.headers["Content-Type"]
    return response


def _unexpected_error(error: Exception) -> tuple[Response, int, dict[str, str]]:
    return _error_response(unexpected_error(error))
