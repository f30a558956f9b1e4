"""Flask's JSON provider, made to refuse what strict JSON (RFC 8259) has no token for.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default; most JSON parsers reject them.
A float that is not finite can only come from a model's outputs (requests are parsed before
they reach Python floats the gateway would echo), so it is the server's fault: a 502.
"""

from __future__ import annotations

from typing import Any

from flask.json.provider import DefaultJSONProvider

from serving.gateway.errors import GatewayError


class NotStrictJSONError(GatewayError):
    """A response value has no strict JSON form (NaN, Infinity): answered as a 502."""

    def __init__(self) -> None:
        super().__init__(502, "the model returned an unusable answer (a value that is not finite)")


class StrictJSONProvider(DefaultJSONProvider):
    """``json.dumps`` with ``allow_nan=False``; a non-finite float raises a 502 error."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj``; raises :class:`NotStrictJSONError` for NaN or +-Infinity."""
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError as error:  # "Out of range float values are not JSON compliant"
            raise NotStrictJSONError() from error
