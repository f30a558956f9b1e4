"""The prediction routes answered without Flask's per-request machinery (issue 9).

A request costs the gateway worker about a third of its Python in Flask and werkzeug around
the view (request and app contexts, URL map binding, hooks, signals, the request and response
objects). :class:`PredictDispatcher` sits in front of the Flask app as WSGI middleware
(``app.wsgi_app``, Flask's documented place for it) and answers the requests it is sure
about itself, with the views' own functions (:func:`serving.gateway.aliases.alias_answer`,
:func:`serving.gateway.routes.predict_answer`), the same body parsing, error mapping,
request id, metrics and access line (:mod:`serving.gateway.exchange`), and the same status
line, headers and body bytes as Flask's answer:

- ``POST /v1/qa``, ``/v1/profile``, ``/v1/similarity``;
- ``POST /v1/models/<name>:predict``, ``.../versions/<v>:predict``, ``.../labels/<l>:predict``.

Everything else goes to Flask untouched: another method or path, any query string (the
query-key rules and pins stay Flask's), a ``SCRIPT_NAME``, a non-ASCII path, and every
request of an app with other hooks than the gateway's own (API keys, rate limits), whose
hooks only Flask runs. ``GATEWAY_FAST_PATH=false`` sends every request to Flask.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.utils import get_content_type

from serving.gateway.aliases import ALIASES, alias_answer
from serving.gateway.backends import VersionSelector
from serving.gateway.errors import GatewayError, http_error, unexpected_error
from serving.gateway.exchange import Exchange, begin, elapsed, end, record_when_closed
from serving.gateway.inference import Services
from serving.gateway.request_body import read_json_body
from serving.gateway.routes import note_model, predict_answer
from serving.gateway.strict_json import StrictJSONProvider
from serving.gateway.web import parse_label, parse_version

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Json = dict[str, Any]
# (services, exchange, environ, body limit) -> the answer's JSON object
Answer = Callable[[Services, Exchange, Environ, int], Json]
Hook = Callable[..., Any]

PREDICT_PREFIX, PREDICT_SUFFIX = "/v1/models/", ":predict"


@dataclass(frozen=True)
class Route:
    """A matched prediction route: Flask's rule (the metrics' ``endpoint`` label), the values
    of its ``<...>`` parts, and how to answer it."""

    rule: str
    arguments: dict[str, str]
    answer: Answer


def _alias_route(model: str) -> Route:
    def answer(found: Services, exchange: Exchange, environ: Environ, limit: int) -> Json:
        exchange.model = model  # as Flask's view: a refused body counts under the model
        payload = read_json_body(environ, limit)
        return alias_answer(found, exchange, model, payload, VersionSelector())

    return Route(f"/v1/{model}", {}, answer)


def _predict_route(
    rule: str, arguments: dict[str, str], pin: Callable[[], VersionSelector]
) -> Route:
    name = arguments["name"]

    def answer(found: Services, exchange: Exchange, environ: Environ, limit: int) -> Json:
        note_model(found, exchange, name)
        selector = pin()  # as Flask's view: the pin is checked before the body is read
        payload = read_json_body(environ, limit)
        return predict_answer(found, exchange, name, selector, payload)

    return Route(rule, arguments, answer)


ALIAS_ROUTES = {f"/v1/{model}": _alias_route(model) for model in ALIASES}


def match(path: str) -> Route | None:
    """The prediction route of an exact path, as Flask's URL map matches it for POST (its
    ``<...>`` parts take any text without ``/`` or ``:``: ``web.SegmentConverter``); None:
    Flask decides."""
    alias = ALIAS_ROUTES.get(path)
    if alias is not None:
        return alias
    if not (path.startswith(PREDICT_PREFIX) and path.endswith(PREDICT_SUFFIX)):
        return None
    inner = path[len(PREDICT_PREFIX) : -len(PREDICT_SUFFIX)]
    if ":" in inner:
        return None
    parts = inner.split("/")
    if len(parts) == 1 and parts[0]:
        return _predict_route("/v1/models/<name>:predict", {"name": parts[0]}, VersionSelector)
    if len(parts) != 3 or not (parts[0] and parts[2]):
        return None
    name, kind, pin = parts
    if kind == "versions":
        return _predict_route(
            "/v1/models/<name>/versions/<version>:predict",
            {"name": name, "version": pin},
            lambda: VersionSelector(version=parse_version(pin, ["path", "version"])),
        )
    if kind == "labels":
        return _predict_route(
            "/v1/models/<name>/labels/<label>:predict",
            {"name": name, "label": pin},
            lambda: VersionSelector(label=parse_label(pin, ["path", "label"])),
        )
    return None


class Answered(list):  # type: ignore[type-arg]
    """The WSGI iterable ``[body]`` of an answer, counted and logged when the server closes
    it after writing it (PEP 3333; ``exchange.record_when_closed``): counted before it was
    sent, an answer to a client that had reset the connection was a 200. A list, so the
    server iterates it at C speed."""

    __slots__ = ("on_close",)
    on_close: Callable[[], None]

    def close(self) -> None:
        """Count and log the answer, with the status it was delivered with."""
        self.on_close()


def status_line(status: int) -> str:
    """werkzeug's status line for a code (``422 UNPROCESSABLE ENTITY``)."""
    return f"{status} {HTTP_STATUS_CODES.get(status, 'unknown').upper()}"


class PredictDispatcher:
    """WSGI middleware answering the prediction routes; Flask (``fallback``) the rest."""

    def __init__(self, app: Flask, fallback: WSGIApp) -> None:
        self._fallback = fallback
        self._services: Services = app.extensions["gateway"]
        self._limit: int = app.config["MAX_CONTENT_LENGTH"]
        provider = app.json
        if not isinstance(provider, StrictJSONProvider):
            raise TypeError("the gateway answers with StrictJSONProvider")
        self._json = provider
        self._content_type = get_content_type(provider.mimetype, "utf-8")
        self._statuses: dict[int, str] = {}

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Answer a prediction route here, anything else with Flask."""
        if (
            environ.get("REQUEST_METHOD") != "POST"
            or environ.get("QUERY_STRING")
            or environ.get("SCRIPT_NAME")
        ):
            return self._fallback(environ, start_response)
        path = environ.get("PATH_INFO", "")
        route = match(path) if path.isascii() else None
        if route is None:
            return self._fallback(environ, start_response)
        exchange, tokens = begin(environ)
        try:
            status, body, extra = self._answer(route, exchange, environ)
            headers = [
                ("Content-Type", self._content_type),
                ("Content-Length", str(len(body))),
                *extra,
                ("X-Request-ID", exchange.request_id),
            ]
        finally:
            end(tokens)
        line = self._statuses.get(status)
        if line is None:
            line = self._statuses[status] = status_line(status)
        start_response(line, headers)
        answered = Answered((body,))
        answered.on_close = record_when_closed(
            self._services.metrics, exchange, route.rule, "POST", path, status, elapsed(exchange)
        )
        return answered

    def _answer(
        self, route: Route, exchange: Exchange, environ: Environ
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """Status, body and extra headers, with Flask's error handlers' mapping."""
        try:
            self._services.registry.start()
            answer = route.answer(self._services, exchange, environ, self._limit)
            return 200, self._json.body(answer), []
        except GatewayError as error:
            failure = error
        except HTTPException as error:  # werkzeug's 413 of a chunked body over the limit
            failure = http_error(error)
        except Exception as error:
            failure = unexpected_error(error)
        return failure.status, self._json.body(failure.body()), list(failure.headers.items())


def install(app: Flask, before: Hook, after: Hook, teardown: Hook) -> bool:
    """Put :class:`PredictDispatcher` in front of ``app`` when the request hooks that run for
    the prediction routes (the app's and the ``gateway`` blueprint's) are only the gateway's
    own (``before``, the query check, ``after``, ``teardown``): any other hook (API keys, rate
    limits) runs in Flask only. Call it last in the app factory; True when installed."""
    from serving.gateway.web import blueprint, refuse_unknown_query

    scopes = (None, blueprint.name)

    def hooks(registered: dict[Any, list[Any]]) -> list[list[Any]]:
        return [list(registered.get(scope, [])) for scope in scopes]

    own = (
        hooks(app.before_request_funcs) == [[before], [refuse_unknown_query]]
        and hooks(app.after_request_funcs) == [[after], []]
        and hooks(app.teardown_request_funcs) == [[teardown], []]
        and hooks(app.url_value_preprocessors) == [[], []]
    )
    if own:
        app.wsgi_app = PredictDispatcher(app, app.wsgi_app)  # type: ignore[method-assign]
    return own
