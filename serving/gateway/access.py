"""Optional API keys and per-client rate limits at the gateway's edge.

Both are off by default (``GATEWAY_API_KEYS`` / ``GATEWAY_API_KEYS_FILE`` and
``GATEWAY_RATE_LIMIT`` unset). With keys set, every route but the open ones (and every
``OPTIONS``: a CORS preflight carries no credentials) needs
``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; a missing or wrong key is a 401 in
the usual error shape. Keys are compared in constant time (``hmac.compare_digest`` over
their sha256 digests, every key checked), so a timing side channel does not reveal a prefix.
Rate limits are Flask-Limiter's (``limits`` syntax, e.g. ``100/minute;2000/hour``), counted
per API key (or per client address without keys); over the limit is a 429 with
``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from flask import Flask, Response, g, request
from flask_limiter import HeaderNames, Limiter
from limits.errors import ConfigurationError

from serving.gateway.errors import GatewayError
from serving.gateway.settings import GatewaySettings
from serving.redaction import redact_in

# Probes and the API description stay reachable without a key (orchestrators, browsers).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/docs"})
OPEN_PREFIXES = ("/docs/",)
# Flask-Limiter writes its Retry-After (the window's reset) on every answer of a limited route,
# over a 503's own ("the model server is unavailable; retry in 1 s" read 60) and on 200s: it
# writes under this name instead, copied to Retry-After on its 429 only.
LIMIT_RETRY_AFTER = "X-RateLimit-Retry-After"


def install_access_control(app: Flask, settings: GatewaySettings) -> None:
    """Register the key check and the rate limiter on ``app`` when the settings ask for them."""
    digests = [_digest(key) for key in settings.api_key_values()]
    if digests:
        app.before_request(_key_check(digests, settings.metrics_require_key))
    if settings.rate_limit:
        limiter = Limiter(
            key_func=_client_key,
            default_limits=[settings.rate_limit],
            default_limits_exempt_when=_is_open,
            storage_uri=settings.rate_limit_storage_uri,
            headers_enabled=True,  # X-RateLimit-* on every limited answer
            header_name_mapping={HeaderNames.RETRY_AFTER: LIMIT_RETRY_AFTER},
            strategy="fixed-window",
        )
        # Registered first, so it runs after the limiter's own hook (Flask runs them last first).
        app.after_request(_retry_after_on_429)
        uri = settings.rate_limit_storage_uri
        try:
            limiter.init_app(app)
        except ConfigurationError as error:
            # limits repeats the URI ("unknown storage scheme : redis+x://user:secret@host"),
            # a password in the worker's boot traceback: masked, the original not chained.
            raise ConfigurationError(redact_in(str(error), uri)) from None


def _retry_after_on_429(response: Response) -> Response:
    """Give the limiter's 429 its ``Retry-After`` (RFC 6585 section 4); other answers keep
    their own (a 503's) or none."""
    if response.status_code == 429 and LIMIT_RETRY_AFTER in response.headers:
        response.headers["Retry-After"] = response.headers[LIMIT_RETRY_AFTER]
    return response


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _is_open(metrics_open: bool = True) -> bool:
    if request.method == "OPTIONS":
        # A CORS preflight never carries credentials (Fetch standard, "CORS-preflight
        # request"): it was a 401 with keys set. No view takes OPTIONS; Flask answers it (204,
        # Allow, no body: GatewayFlask.make_default_options_response), telling nothing a key
        # guards. Nor does it spend, or get a 429 of, the client's rate limit.
        rule = request.url_rule
        # Flask sets provide_automatic_options on each rule (werkzeug's Rule declares none).
        return rule is None or bool(getattr(rule, "provide_automatic_options", False))
    path = request.path
    if path == "/metrics":
        return metrics_open
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key") or None


def _key_check(digests: list[bytes], metrics_require_key: bool) -> Callable[[], None]:
    def check() -> None:
        if _is_open(metrics_open=not metrics_require_key):
            return
        presented = _presented_key()
        candidate = _digest(presented or "")
        matched = False
        for digest in digests:  # no early exit: the time does not depend on which key matched
            matched |= hmac.compare_digest(candidate, digest)
        if presented is None or not matched:
            raise GatewayError(
                401,
                "missing or invalid API key",
                [{"msg": "send Authorization: Bearer <key> or X-API-Key: <key>"}],
                headers={"WWW-Authenticate": 'Bearer realm="gateway"'},
            )
        g.api_key_id = candidate.hex()[:16]  # who, for rate limits; never the key itself

    return check


def _client_key() -> str:
    key_id = g.get("api_key_id")
    return f"key:{key_id}" if key_id else f"addr:{request.remote_addr or 'unknown'}"
