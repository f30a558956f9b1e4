"""REST conformance: TF Serving's JSON shapes, numbers equal to the SavedModel, error bodies."""

from __future__ import annotations

import numpy as np
import pytest
import requests

from tests.integration.modelserver.helpers import PROFILE_INPUTS, QA_INPUTS, reference_outputs


def post(server, path: str, payload=None, data: bytes | None = None) -> requests.Response:
    url = f"{server.rest_url}/v1/models/{path}"
    if data is not None:
        return requests.post(url, data=data, timeout=30)
    return requests.post(url, json=payload, timeout=30)


def test_row_format_single_output(server, reference_repo):
    instances = [
        {key: value[index].tolist() for key, value in QA_INPUTS.items()} for index in range(2)
    ]
    reply = post(server, "qa:predict", {"instances": instances})
    assert reply.status_code == 200, reply.text
    expected = reference_outputs(reference_repo, "qa", QA_INPUTS)["answer_probs"]
    np.testing.assert_allclose(reply.json()["predictions"], expected, atol=1e-5)


def test_row_format_several_outputs(server, reference_repo):
    instances = PROFILE_INPUTS["post_ids"].tolist()  # one input: plain rows are allowed
    reply = post(server, "profile/versions/1:predict", {"instances": instances})
    assert reply.status_code == 200, reply.text
    predictions = reply.json()["predictions"]
    expected = reference_outputs(reference_repo, "profile", PROFILE_INPUTS)
    assert len(predictions) == 2
    assert set(predictions[0]) == {"age", "income_probs", "gender_prob"}
    for key, value in expected.items():
        np.testing.assert_allclose([row[key] for row in predictions], value, atol=1e-5)


def test_columnar_format(server, reference_repo):
    inputs = {key: value.tolist() for key, value in PROFILE_INPUTS.items()}
    reply = post(server, "profile:predict", {"inputs": inputs, "signature_name": "serving_default"})
    assert reply.status_code == 200, reply.text
    outputs = reply.json()["outputs"]
    expected = reference_outputs(reference_repo, "profile", PROFILE_INPUTS)
    for key, value in expected.items():
        np.testing.assert_allclose(outputs[key], value, atol=1e-5)


def test_columnar_single_output_is_bare(server, reference_repo):
    inputs = {key: value.tolist() for key, value in QA_INPUTS.items()}
    reply = post(server, "qa:predict", {"inputs": inputs})
    expected = reference_outputs(reference_repo, "qa", QA_INPUTS)["answer_probs"]
    np.testing.assert_allclose(reply.json()["outputs"], expected, atol=1e-5)


def test_status_json(server):
    reply = requests.get(f"{server.rest_url}/v1/models/qa", timeout=30)
    assert reply.status_code == 200
    assert reply.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert requests.get(f"{server.rest_url}/v1/models/qa/versions/1", timeout=30).ok


def test_metadata_json(server):
    reply = requests.get(f"{server.rest_url}/v1/models/similarity/metadata", timeout=30)
    assert reply.status_code == 200
    body = reply.json()
    assert body["model_spec"] == {"name": "similarity", "signature_name": "", "version": "1"}
    serving = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["inputs"]["left_ids"]["dtype"] == "DT_INT32"
    assert set(serving["outputs"]) == {"score"}
    assert serving["method_name"] == "tensorflow/serving/predict"


@pytest.mark.parametrize(
    ("path", "payload", "status", "fragment"),
    [
        ("nope:predict", {"instances": [[1]]}, 404, "nope"),
        ("qa/versions/99:predict", {"inputs": {}}, 404, "99"),
        ("qa/labels/canary:predict", {"inputs": {}}, 400, "canary"),
        ("qa:predict", {"instances": [{"article_ids": [1, 2]}]}, 400, "question_ids"),
        (
            "qa:predict",
            {"inputs": {"article_ids": [[1.5]], "question_ids": [[1]]}},
            400,
            "article_ids",
        ),
        ("qa:predict", {"signature_name": "nope", "inputs": {}}, 400, "nope"),
        ("qa:predict", {"nothing": 1}, 400, "instances"),
        ("qa:predict", {"signature_name": 100, "inputs": {}}, 400, "signature_name"),
    ],
    ids=["model", "version", "label", "missing", "type", "signature", "no-key", "sig-type"],
)
def test_predict_errors(server, path, payload, status, fragment):
    reply = post(server, path, payload)
    assert reply.status_code == status, reply.text
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize(
    ("data", "fragment"), [(b"", "document is empty"), (b"instances = [1]", "JSON Parse error")]
)
def test_bad_json(server, data, fragment):
    reply = post(server, "qa:predict", data=data)
    assert reply.status_code == 400
    assert fragment in reply.json()["error"]


@pytest.mark.parametrize(
    "data",
    [
        b'{"inputs": {"post_ids": [[5, 6]]}, "inputs": {"post_ids": [[7, 8]]}}',
        b'{"inputs": {"post_ids": [[5, 6]], "post_ids": [[7, 8]]}}',
        b'{"instances": [{"post_ids": [5, 6], "post_ids": [7, 8]}]}',
        b'{"signature_name": "x", "signature_name": "serving_default", "instances": [[5]]}',
    ],
    ids=["top", "inputs", "instance", "signature"],
)
def test_a_repeated_key_is_400_not_one_reading_of_it(server, local_only, data):
    # Found by the adversarial repo pass: Python's parser kept the last copy and answered
    # (200), where TF Serving's RapidJSON reads the first (or appends both within an
    # instance): the same body meant two requests. The model server refuses it.
    reply = post(server, "profile:predict", data=data)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith("JSON Parse error: an object repeats the key")
    assert ("signature_name" in reply.json()["error"]) == (b"signature_name" in data)


def test_an_integer_of_thousands_of_digits_is_400(server):
    # Valid JSON that Python's int() refuses (over 4300 digits): it was a 500 "Internal
    # error"; it is a number that is no int32, as for any other out-of-range id.
    ids = "9" * 5000
    data = f'{{"instances": [{{"article_ids": [{ids}], "question_ids": [5]}}]}}'.encode()
    reply = post(server, "qa:predict", data=data)
    assert reply.status_code == 400, reply.text
    assert "int32" in reply.json()["error"]


def test_unknown_model_status_is_404(server):
    reply = requests.get(f"{server.rest_url}/v1/models/nope", timeout=30)
    assert reply.status_code == 404
    assert "error" in reply.json()


def test_malformed_path_is_400(server):
    reply = requests.get(f"{server.rest_url}/v1/models/qa:predict", timeout=30)
    assert reply.status_code == 400
    assert "Malformed request" in reply.json()["error"]


def test_liveness_readiness_and_metrics(server, local_only):
    assert requests.get(f"{server.rest_url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{server.rest_url}/readyz", timeout=10).json() == {"ready": True}
    post(server, "qa:predict", {"inputs": {key: v.tolist() for key, v in QA_INPUTS.items()}})
    for path in ("/monitoring/prometheus/metrics", "/metrics"):
        text = requests.get(f"{server.rest_url}{path}", timeout=10).text
        assert 'modelserver_requests_total{api="rest_predict",code="200",model="qa"' in text
        assert "modelserver_request_latency_seconds_bucket" in text


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"instances": ' + _nested(100_000) + "}",  # deeper than Python's JSON parser goes
        '{"inputs": {"article_ids": ' + _nested(65) + ', "question_ids": [[1]]}}',
        '{"inputs": {"article_ids": ' + _nested(900) + ', "question_ids": [[1]]}}',
        '{"instances": [{"article_ids": ' + _nested(64) + ', "question_ids": [1]}]}',
    ],
    ids=["parser-depth", "rank-65", "rank-900", "rows-rank-64"],
)
def test_deeply_nested_bodies_are_invalid_argument_not_internal(server, local_only, body) -> None:
    # Found by the new-user trial: a 500 "Internal error" (RecursionError in the parser, and
    # numpy's 64-dimension limit), where the client's JSON is at fault.
    reply = post(server, "qa:predict", data=body.encode())
    assert reply.status_code == 400, reply.text
    assert "Internal" not in reply.json()["error"]
    assert requests.get(f"{server.rest_url}/v1/models/qa", timeout=30).status_code == 200
