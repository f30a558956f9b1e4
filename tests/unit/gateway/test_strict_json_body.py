"""``StrictJSONProvider.body``: the bytes ``jsonify`` answers with, refusing NaN and Infinity."""

from __future__ import annotations

import math

import pytest
from flask import Flask, jsonify

from serving.gateway.strict_json import NotStrictJSONError, StrictJSONProvider

VALUES = [
    {"answer": "kitchen", "confidence": 0.5, "candidates": [{"answer": "é", "probability": 1e-9}]},
    {"b": 1, "a": [True, None, 2.5]},
    {"error": "the request is invalid", "detail": [{"loc": ["body", 0], "msg": "x\ny"}]},
]


def _app(debug: bool = False, sort_keys: bool = False) -> Flask:
    app = Flask("strict")
    app.json = StrictJSONProvider(app)
    app.json.sort_keys = sort_keys
    app.debug = debug
    return app


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("sort_keys", [False, True])
@pytest.mark.parametrize("value", VALUES)
def test_body_is_jsonify_byte_for_byte(value, debug, sort_keys) -> None:
    app = _app(debug, sort_keys)
    assert isinstance(app.json, StrictJSONProvider)
    with app.app_context():
        assert app.json.body(value) == jsonify(value).get_data()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_body_refuses_values_that_are_not_finite(bad) -> None:
    app = _app()
    assert isinstance(app.json, StrictJSONProvider)
    with pytest.raises(NotStrictJSONError):
        app.json.body({"scores": [0.5, bad]})
    with app.app_context(), pytest.raises(NotStrictJSONError):
        jsonify({"scores": [bad]})
