"""HTTP rules both servers keep: a WebSocket handshake answered as the plain HTTP request it
also is, the form of a ``Host`` header, and ``Connection`` read as a list of options.

werkzeug's URL map takes a request with ``Connection: Upgrade`` and ``Upgrade: websocket``
as a ``ws://`` request, and no rule of these apps is a WebSocket rule: every route answered
``400 Bad Request`` "The browser (or proxy) sent a request that this server could not
understand" (``WebsocketMismatch``; an HTML page from the model server). Neither server
speaks WebSocket, and RFC 9110 section 7.8 lets a server ignore ``Upgrade`` and answer in
the protocol in use, as TF Serving's HTTP server and the gateway's direct prediction path
(which never asks the URL map) do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask, Request
from werkzeug.routing import MapAdapter

# RFC 9112 section 3.2, RFC 3986 section 3.2.2: a Host value is uri-host [":" port] (an IP
# literal in brackets, or a reg-name of unreserved, pct-encoded and sub-delims characters),
# possibly empty. A server MUST answer 400 to an HTTP/1.1 request without one, with two, or
# with one of another form: a front and the server could each read another host. An IPv6
# literal may carry a zone ("[fe80::1%25eth0]", RFC 6874: "%25" and the zone's name).
HOST = re.compile(
    r"(?:\[[0-9A-Za-z:.\-_~!$&'()*+,;=%]+\]|[0-9A-Za-z.\-_~%!$&'()*+,;=]*)(?::[0-9]*)?"
)


def connection_options(fields: Iterable[str]) -> set[str]:
    """The options of every ``Connection`` field, lowercase (RFC 9110 section 7.6.1: a list
    of case-insensitive tokens; ``keep-alive, close`` asks to close, as ``Close`` does)."""
    return {option.strip(" \t").lower() for field in fields for option in field.split(",")}


class PlainHttpFlask(Flask):
    """Flask whose URL adapter matches every request as HTTP (``Upgrade`` ignored)."""

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        """Flask's adapter, with a WebSocket handshake's ``ws``/``wss`` scheme put back to
        ``http``/``https``."""
        adapter = super().create_url_adapter(request)
        if adapter is not None and adapter.websocket:
            adapter.websocket = False
            adapter.url_scheme = "https" if adapter.url_scheme == "wss" else "http"
        return adapter
