"""Credentials in a configured address are never written to a log line or an error.

``GATEWAY_REST_URL`` may carry ``user:password@`` (sent as Basic auth), and any address
setting may be given one by mistake; the start-up setting errors showed the value as given and
``urlsplit``'s and our own messages repeated it, password included (pydantic's own text too,
its ``input_value``). :func:`redact_url` is the one rule every such place applies (the
gateway's settings and backends, ``scripts/wait_for.py``).
"""

from __future__ import annotations

MASK = "***"


def redact_url(value: str) -> str:
    """``value`` with its userinfo masked: ``http://user:***@host:8501``, ``***@host:8500`` for
    a user name alone (a token is often given as one), unchanged without an ``@``.

    The userinfo ends at the last ``@`` (RFC 3986 section 3.2.1; ``urlsplit`` reads it so): a
    password may hold an unencoded ``@``. Everything before that ``@`` after the scheme is
    masked but a user name free of ``/?#``, so a malformed value is masked too much, never
    too little.
    """
    scheme, separator, rest = value.partition("://")
    if not separator:
        scheme, rest = "", value
    else:
        scheme += separator
    if "@" not in rest:
        return value
    info, _, after = rest.rpartition("@")
    user, colon, _ = info.partition(":")
    shown = f"{user}:{MASK}" if colon and not any(mark in user for mark in "/?#") else MASK
    return f"{scheme}{shown}@{after}"


def redact_in(text: str, value: str) -> str:
    """``text`` (a library's message) with each copy of the address ``value`` in it shown as
    :func:`redact_url` shows it."""
    return text.replace(value, redact_url(value))
