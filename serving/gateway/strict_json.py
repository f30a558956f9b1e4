"""Strict JSON both ways: request bodies without repeated names, answers without NaN.

Requests: RFC 8259 section 4 says an object's names SHOULD be unique and that parsers
disagree on a repeated one (Python's ``json`` keeps the last, others the first or both), so a
body whose meaning depends on the parser is refused (:func:`parse_body`, 422 naming the key).

Answers: Python's ``json`` writes ``NaN`` and ``Infinity`` by default; most JSON parsers reject
them. A float that is not finite can only come from a model's outputs (requests are parsed
before they reach Python floats the gateway would echo), so it is the server's fault: a 502.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from flask.json.provider import DefaultJSONProvider

from serving.gateway.errors import Detail, GatewayError, echo
from serving.json_text import has_lone_surrogate
from serving.numbers import json_fraction, json_integer

MAX_REPEATED_DETAILS = 20
# The ``loc`` entries all details may hold together (the first detail is always given): a
# repeat 900 arrays deep has a ``loc`` of 900 entries, and 20 of them made a 2 kB body's
# answer 36 kB.
MAX_REPEATED_LOC_ITEMS = 200


# A key may hold a lone surrogate ("\ud800": JSON's escapes allow it); pydantic cannot read
# such a key and blamed its object's parent (["body"], "Input should be a valid string").
REPEATED = ("this key appears more than once in its object", "duplicate_key")
NOT_UNICODE = ("this key is no Unicode text (it holds a lone surrogate)", "string_unicode")


class _RepeatedNameError(Exception):
    """Raised while parsing at the first object that repeats a name or holds a name that is
    no Unicode text (the fast path): the body is parsed again to say where."""


class _Repeated(dict[str, Any]):
    """A parsed object that had ``names`` more than once (the last value of each is kept),
    or ``names`` that are no Unicode text: ``problems`` pairs each with its message, type."""

    problems: list[tuple[str, tuple[str, str]]]


def _unreadable(names: Iterable[str]) -> list[str]:
    """The names holding a lone surrogate (ASCII names, the usual ones, are skipped at once)."""
    return [name for name in names if has_lone_surrogate(name)]


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    # all(map(str.isascii)): one C call per key for the valid bodies' ASCII keys
    if len(found) != len(pairs) or (not all(map(str.isascii, found)) and _unreadable(found)):
        raise _RepeatedNameError()
    return found


def repeated_names(pairs: Sequence[tuple[str, Any]]) -> list[str]:
    """The names that ``pairs`` (an object's members, in document order) has more than once,
    each once, in the order of their second occurrence.

    Linear in ``len(pairs)`` (a set and a dict: a body may repeat tens of thousands of
    distinct names, and a list search per name made that quadratic).
    """
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for name, _ in pairs:
        if name in seen:
            repeated[name] = None
        else:
            seen.add(name)
    return list(repeated)


def _marked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    unreadable = _unreadable(found)
    if len(found) == len(pairs) and not unreadable:
        return found
    repeated = _Repeated(found)
    names = repeated_names(pairs) if len(found) != len(pairs) else []
    repeated.problems = [(name, REPEATED) for name in names]
    repeated.problems += [(name, NOT_UNICODE) for name in unreadable]
    return repeated


# A value's place in the body, built only for the values that are reported: (its key or
# index, its parent's place), None at the root. A list per value instead (its parent's
# path plus its key) cost O(depth) per value: a body nested 900 deep holding 150,000 empty
# arrays took 10 s and 1 GB to report one repeated name.
_Place: TypeAlias = tuple[str | int, "_Place"] | None


def _location(place: _Place) -> list[str | int]:
    keys: list[str | int] = []
    while place is not None:
        key, place = place
        keys.append(echo(key) if isinstance(key, str) else key)
    return ["body", *reversed(keys)]


def _repeated_names(value: Any) -> list[Detail]:
    """A 422 detail per repeated name, ``loc`` from the body's root, in document order: an
    object's own repeats, then those in its values. At most ``MAX_REPEATED_DETAILS`` of them,
    holding at most ``MAX_REPEATED_LOC_ITEMS`` ``loc`` entries together (beyond the first).

    Iterative (deep bodies) and linear in the body's containers: only objects and arrays are
    visited, each holding its place as a link to its parent's (:data:`_Place`).
    """
    found: list[Detail] = []
    stack: list[tuple[Any, _Place]] = [(value, None)]
    budget = MAX_REPEATED_LOC_ITEMS
    while stack and len(found) < MAX_REPEATED_DETAILS and budget > 0:
        item, place = stack.pop()
        if isinstance(item, _Repeated):
            location = _location(place)
            for name, (message, kind) in item.problems[: MAX_REPEATED_DETAILS - len(found)]:
                if found and len(location) + 1 > budget:
                    return found
                found.append({"loc": [*location, echo(name)], "msg": message, "type": kind})
                budget -= len(location) + 1
        children: Iterable[tuple[str | int, Any]]
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue  # a scalar body
        # Pushed in reverse: an object's values are visited in document order. An empty
        # container holds no repeat: not pushed (a body of many "[]" is walked once).
        stack += reversed(
            [
                (child, (key, place))
                for key, child in children
                if isinstance(child, dict | list) and child
            ]
        )
    return found


# Built once: json.loads with an object_pairs_hook builds a new decoder on every call.
# json_integer: an integer of thousands of digits is refused by its field (422 at its path).
# json_fraction: 1.9999999999999999999 reads as 2.0 but stays refused by integer fields.
_UNIQUE = json.JSONDecoder(
    object_pairs_hook=_unique_object, parse_int=json_integer, parse_float=json_fraction
)
_MARKED = json.JSONDecoder(
    object_pairs_hook=_marked_object, parse_int=json_integer, parse_float=json_fraction
)


def parse_body(data: bytes) -> Any:
    """``json.loads(data)``, refusing an object that repeats a name anywhere in the body.

    Raises GatewayError 422 with ``{"loc": ["body", ..., name], "type": "duplicate_key"}`` per
    repeated name (the rule's source: RFC 8259 section 4), and ``"type": "string_unicode"``
    per name holding a lone surrogate (RFC 8259 section 8.2: such a string is no Unicode
    text; pydantic cannot read it as a key); ``ValueError`` (not JSON, not UTF-8/16/32) and
    ``RecursionError`` (nested too deeply) as ``json.loads`` does.
    """
    text = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads does
    try:
        return _UNIQUE.decode(text)
    except _RepeatedNameError:
        # Rare: parsed again, marking every such object, to name where each repeat is.
        marked = _MARKED.decode(text)
        raise GatewayError(422, "the request is invalid", _repeated_names(marked)) from None


class NotStrictJSONError(GatewayError):
    """A response value has no strict JSON form (NaN, Infinity): answered as a 502."""

    def __init__(self) -> None:
        super().__init__(502, "the model returned an unusable answer (a value that is not finite)")


class StrictJSONProvider(DefaultJSONProvider):
    """``json.dumps`` with ``allow_nan=False``; a non-finite float raises a 502 error."""

    _compact: tuple[tuple[bool, bool], json.JSONEncoder] | None = None

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise ``obj``; raises :class:`NotStrictJSONError` for NaN or +-Infinity."""
        kwargs["allow_nan"] = False
        try:
            return super().dumps(obj, **kwargs)
        except ValueError as error:  # "Out of range float values are not JSON compliant"
            raise NotStrictJSONError() from error

    def body(self, obj: Any) -> bytes:
        """The body ``jsonify(obj)`` answers with, byte for byte (Flask's ``response``: compact
        separators unless debugging, then a newline; UTF-8).

        The compact encoder is built once per setting of ``ensure_ascii`` and ``sort_keys``
        (``json.dumps`` with arguments builds one per call). Raises
        :class:`NotStrictJSONError` for NaN or +-Infinity.
        """
        if (self.compact is None and self._app.debug) or self.compact is False:
            return f"{self.dumps(obj, indent=2)}\n".encode()
        key = (self.ensure_ascii, self.sort_keys)
        cached = self._compact
        if cached is None or cached[0] != key:
            encoder = json.JSONEncoder(
                ensure_ascii=key[0],
                sort_keys=key[1],
                allow_nan=False,
                separators=(",", ":"),
                default=self.default,
            )
            cached = self._compact = (key, encoder)
        try:
            return f"{cached[1].encode(obj)}\n".encode()
        except ValueError as error:
            raise NotStrictJSONError() from error
