"""TF Serving's documented REST requests, each with the status and body TF Serving gives.

Sources (tensorflow/serving at 9d981c5, Apache-2.0), cited per case:
  api_rest.md                    tensorflow_serving/g3doc/api_rest.md
  handler_test.cc                tensorflow_serving/model_servers/http_rest_api_handler_test.cc
  server_test.py                 tensorflow_serving/model_servers/tensorflow_model_server_test.py
  json_tensor.cc                 tensorflow_serving/util/json_tensor.cc
Models: tests/support/tfserving_models.py (half_plus_two, half_plus_three as TF Serving's).
Cases marked LOCAL differ from TF Serving on purpose (README, "Not implemented").
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.support.model_server import ModelServerHandle


def call(server: ModelServerHandle, method: str, path: str, body: Any = None, data=None):
    kwargs: dict[str, Any] = {"timeout": 30}
    if data is not None:
        kwargs["data"] = data
    elif body is not None:
        kwargs["json"] = body
    return requests.request(method, f"{server.rest_url}{path}", **kwargs)


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        # api_rest.md:470 (saved_model_half_plus_three)
        (
            "half_plus_three:predict",
            {"instances": [1.0, 2.0, 5.0]},
            {"predictions": [3.5, 4.0, 5.5]},
        ),
        # server_test.py:487 and :508 (half_plus_two, x declared [None, 1], sent with shape [3])
        ("half_plus_two:predict", {"instances": [2.0, 3.0, 4.0]}, {"predictions": [3.0, 3.5, 4.0]}),
        ("half_plus_two:predict", {"inputs": [2.0, 3.0, 4.0]}, {"outputs": [3.0, 3.5, 4.0]}),
        # handler_test.cc:337
        (
            "half_plus_two:predict",
            {"instances": [[1.0, 2.0], [3.0, 4.0]]},
            {"predictions": [[2.5, 3.0], [3.5, 4.0]]},
        ),
        # handler_test.cc:349 (version in the URL, leading-zero folder 00000123)
        (
            "half_plus_two/versions/123:predict",
            {"instances": [1.0, 2.0]},
            {"predictions": [2.5, 3.0]},
        ),
        # handler_test.cc:369 and :380
        (
            "half_plus_two:predict",
            {"signature_name": "serving_default", "instances": [3.0, 4.0]},
            {"predictions": [3.5, 4.0]},
        ),
        (
            "half_plus_two:predict",
            {"signature_name": "serving_default", "inputs": [3.0, 4.0]},
            {"outputs": [3.5, 4.0]},
        ),
        # api_rest.md:314 (strings as text, *_bytes outputs as b64) and :352 (b64 inputs)
        (
            "strings:predict",
            {"instances": ["ab", {"b64": "aGk="}]},
            {
                "predictions": [
                    {"length": 2, "text_bytes": {"b64": "YWI="}, "upper": "AB"},
                    {"length": 2, "text_bytes": {"b64": "aGk="}, "upper": "HI"},
                ]
            },
        ),
        (
            "strings:predict",
            {"inputs": {"text": ["ok"]}},
            {"outputs": {"length": [2], "text_bytes": [{"b64": "b2s="}], "upper": ["OK"]}},
        ),
        # json_tensor.cc:303 (int32 values within range pass unchanged)
        ("ids:predict", {"instances": [33, 6]}, {"predictions": [33, 6]}),
    ],
)
def test_documented_predictions(tfs, path, body, expected):
    reply = call(tfs, "POST", f"/v1/models/{path}", body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == expected


def test_status_of_a_leading_zero_version(tfs):
    # api_rest.md:452 and server_test.py:521: folder 00000123 is version "123"
    reply = call(tfs, "GET", "/v1/models/half_plus_three")
    assert reply.status_code == 200
    assert reply.json() == {
        "model_version_status": [
            {
                "version": "123",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


@pytest.mark.parametrize(
    ("method", "path", "status", "fragment"),
    [
        ("GET", "/v1/foo", 400, "Malformed request"),  # handler_test.cc:183
        ("POST", "/v1/foo", 400, "Malformed request"),  # :188
        ("GET", "/v1/models", 400, "Missing model name"),  # :193
        ("GET", "/v1/models/debug/model_name", 400, "Malformed request"),  # :197
        ("POST", "/v1/models", 400, "Malformed request"),  # :202
        ("GET", "/v1/models/foo:predict", 400, "Malformed request"),  # :207
        ("GET", "/v1/models/foo/version/50:predict", 400, "Malformed request"),  # :212
        ("POST", "/v1/models/foo/version/50:regress", 400, "Malformed request"),  # :217
        ("POST", "/v1/models/foo/versions/HELLO:regress", 400, "Malformed request"),  # :223
        (
            "POST",
            "/v1/models/foo/versions/18446744073709551615:regress",
            400,
            "Failed to convert version",
        ),  # :228
        ("POST", "/v1/models/foo/metadata", 400, "Malformed request"),  # :236
        ("POST", "/v1/models/foo/label/some_label:regress", 400, "Malformed request"),  # :242
        (
            "POST",
            "/v1/models/foo/versions/50/labels/some_label:regress",
            400,
            "Malformed request",
        ),  # :248
        ("POST", "/v1/models/foo/versions/some_label:regress", 400, "Malformed request"),  # :253
        # the same int64 rule on GET (issue 8: a version past int64 is 400, not 404)
        ("GET", "/v1/models/half_plus_two/versions/99999999999999999999", 400, "Failed to convert"),
    ],
)
def test_malformed_urls(tfs, method, path, status, fragment):
    reply = call(tfs, method, path)
    assert reply.status_code == status, reply.text
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/foo:predict",  # handler_test.cc:265
        "/v1/models/foo/versions/50:predict",  # :271
        "/v1/models/half_plus_two/versions/99:predict",  # :277
    ],
)
def test_unknown_model_or_version_is_404(tfs, path):
    reply = call(tfs, "POST", path, {"instances": [1]})
    assert reply.status_code == 404, reply.text


def test_unknown_model_message(tfs):
    # api_rest.md:491
    reply = call(tfs, "POST", "/v1/models/half:predict", {"instances": [1.0, 5.0]})
    assert reply.status_code == 404
    assert reply.json() == {"error": "Servable not found for request: Latest(half)"}


@pytest.mark.parametrize(
    ("path", "data", "fragment"),
    [
        ("half_plus_two:predict", b"", "JSON Parse error: The document is empty"),  # :291
        ("half_plus_two:predict", b"instances = [1, 2]", "JSON Parse error: Invalid value"),  # :298
        ("half_plus_two:predict", b'{"instances": ["x", "y"]}', "not of expected type: float"),
        ("half_plus_two/labels/nope:predict", b'{"instances": [1.0]}', "Unrecognized servable"),
        (
            "half_plus_two:predict",
            b'{"signature_name": 100}',
            "'signature_name' key must be a string value.",
        ),  # :323
        # json_tensor.cc:303-308: 4294967329 is not an int32 (not narrowed to 33)
        ("ids:predict", b'{"instances": [4294967329, 4294967302]}', "not of expected type: int32"),
        ("ids:predict", b'{"inputs": [2147483648]}', "not of expected type: int32"),
        # json_tensor.cc:499, :688, :635, :449 (issue 13 item 8: TF Serving's key words)
        ("half_plus_two:predict", b"[1.0]", "Is not object"),
        ("half_plus_two:predict", b'{"instances": []}', "No values in 'instances' array"),
        ("half_plus_two:predict", b'{"inputs": {"z": [1.0]}}', "Missing named input: x"),
        ("half_plus_two:predict", b'{"instances": [{"z": 1.0}]}', "does not have named input: z"),
        # json_tensor.cc:424 (ragged)
        ("half_plus_two:predict", b'{"inputs": [[1.0], [2.0, 3.0]]}', "unexpected size"),
    ],
)
def test_bad_requests_are_400_with_tf_serving_words(tfs, path, data, fragment):
    # handler_test.cc:286-327 for the first five
    reply = call(tfs, "POST", f"/v1/models/{path}", data=data)
    assert reply.status_code == 400, reply.text
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize("verb", ["classify", "regress"])
def test_classify_and_regress_are_unimplemented(tfs, local_only, verb):
    # LOCAL: TF Serving implements them (server_test.py:439, :459); this server answers 501
    body = {"signature_name": f"{verb}_x_to_y", "examples": [{"x": 2.0}]}
    reply = call(tfs, "POST", f"/v1/models/half_plus_two:{verb}", body)
    assert reply.status_code == 501
    assert reply.json() == {
        "error": f"{verb.capitalize()} is not implemented by this model server; use :predict"
    }


def test_no_version_banner(tfs, local_only):
    reply = call(tfs, "GET", "/v1/models/half_plus_two")
    assert "werkzeug" not in reply.headers.get("Server", "").lower()
    assert "/" not in reply.headers.get("Server", "")
