"""Requests a hostile or careless client sends: 4xx with TF Serving's codes, never INTERNAL.

The decoding cases have unit tests (test_tensor_proto, test_rest_json, test_packing); these
check the same faults end to end through the real server's gRPC and REST handlers.
"""

from __future__ import annotations

import gzip
import http.client
import json

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

from serving.modelserver.grpc_service import MAX_MESSAGE_BYTES
from serving.modelserver.rest_body import MAX_GZIP_BYTES
from serving.modelserver.server import MAX_REST_HEADER_BYTES
from tests.integration.modelserver.helpers import QA_INPUTS, predict_request
from tests.support.raw_http import parse_answer, send_raw

INIT_OP = "__saved_model_init_op"  # a SavedModel's init op, listed among its signatures


def test_the_init_op_signature_is_a_client_error(prediction_stub, server):
    """It names the NoOp, no tensor: making its callable raised OutOfRangeError (INTERNAL).
    Now the Session's own code, as TF Serving's Session::Run answers it."""
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(predict_request("qa", {}, signature_name=INIT_OP), timeout=30)
    assert raised.value.code() == grpc.StatusCode.OUT_OF_RANGE
    for body in ({"signature_name": INIT_OP, "inputs": {}}, {"signature_name": INIT_OP}):
        answer = requests.post(f"{server.rest_url}/v1/models/qa:predict", json=body, timeout=30)
        assert answer.status_code == 400 and "NoOp" in answer.json()["error"]


@pytest.mark.parametrize("dtype", [tf.variant, tf.resource])
def test_a_dtype_numpy_cannot_hold_is_invalid_argument(prediction_stub, dtype):
    request = predict_request("qa", QA_INPUTS)
    request.inputs["article_ids"].CopyFrom(
        tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum, tensor_shape={"dim": [{"size": 1}]})
    )
    with pytest.raises(grpc.RpcError) as raised:
        prediction_stub.Predict(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_string_fill_does_not_allocate_its_copies(tfs):
    """64 KB on the wire asked for 8192 copies (512 MB); a few bytes repeated still work."""
    with grpc.insecure_channel(tfs.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for value, code in ((b"x" * 65536, grpc.StatusCode.INVALID_ARGUMENT), (b"ab", None)):
            request = predict_request("strings", {}, output_filter=("length",))
            request.inputs["text"].CopyFrom(
                tensor_pb2.TensorProto(
                    dtype=tf.string.as_datatype_enum,
                    tensor_shape={"dim": [{"size": 8192}]},
                    string_val=[value],
                )
            )
            if code is None:
                answer = stub.Predict(request, timeout=60)
                assert tf.make_ndarray(answer.outputs["length"]).tolist() == [2] * 8192
                continue
            with pytest.raises(grpc.RpcError) as raised:
                stub.Predict(request, timeout=60)
            assert raised.value.code() == code


@pytest.mark.parametrize(
    ("model", "data", "fragment"),
    [
        ("ids", b'{"inputs": [1, true]}', "Type: True is not of expected type: int32"),
        ("half_plus_two", b'{"inputs": [[1.0], [false]]}', "Type: False is not of expected"),
        ("half_plus_two", b'{"inputs": [[1' + b"0" * 400 + b"]]}", "expected type: float"),
        ("strings", b'{"inputs": ["\\ud800"]}', "surrogate pair in string is invalid"),
        # RapidJSON refuses a lone surrogate in any string: a key or the signature name too
        # (this server ignored such an extra key and echoed them as lone "\\ud800" escapes)
        ("ids", b'{"inputs": {"x": [1], "\\udc00": 1}}', "surrogate pair in string is invalid"),
        ("ids", b'{"signature_name": "\\ud800", "inputs": [1]}', "surrogate pair in string"),
    ],
    ids=[
        "bool-among-ints",
        "bool-among-floats",
        "int-past-double",
        "lone-surrogate",
        "lone-surrogate-key",
        "lone-surrogate-signature",
    ],
)
def test_json_values_tf_serving_refuses_are_400(tfs, model, data, fragment):
    # -k lone-surrogate-key / -signature: 200 / 400 echoing "\\ud800" before the fix
    url = f"{tfs.rest_url}/v1/models/{model}:predict"
    answer = requests.post(url, data=data, timeout=30)
    assert answer.status_code == 400, answer.text
    assert fragment in answer.json()["error"]


def test_a_method_no_route_takes_gets_a_json_405(server, local_only):
    """Flask answered TRACE with its HTML page."""
    answer = requests.request("TRACE", f"{server.rest_url}/v1/models/qa", timeout=30)
    assert answer.status_code == 405
    assert answer.json() == {"error": "Malformed request: TRACE /v1/models/qa"}
    assert "GET" in answer.headers["Allow"]


def test_names_a_client_makes_up_are_no_metric_series(prediction_stub, server, local_only):
    """Each model name and version of a failed request was a series kept for the server's
    life: a client naming random models grew the registry (and /metrics) without end."""
    made_up = [f"nosuchmodel{index}" for index in range(3)]
    for name in made_up:
        with pytest.raises(grpc.RpcError):
            prediction_stub.Predict(predict_request(name, QA_INPUTS), timeout=30)
        requests.post(f"{server.rest_url}/v1/models/{name}:predict", json={}, timeout=30)
    with pytest.raises(grpc.RpcError):  # a configured model, a version a client made up
        prediction_stub.Predict(predict_request("qa", QA_INPUTS, version=987654), timeout=30)
    text = requests.get(f"{server.rest_url}/metrics", timeout=30).text
    assert not any(name in text for name in made_up) and "987654" not in text
    assert 'code="NOT_FOUND",model="qa",version=""' in text  # still counted, as the model's


def test_a_long_client_string_keeps_the_status_code(prediction_stub):
    """Messages echo what the client sent (a model name, 20,000 extra inputs): past the
    client's metadata limit it got RESOURCE_EXHAUSTED 'Stream removed', not the status."""
    long_name = predict_request("é" * 50_000, QA_INPUTS)
    extra = predict_request("qa", QA_INPUTS)
    for index in range(20_000):
        extra.inputs[f"extra_input_{index}"].CopyFrom(extra.inputs["question_ids"])
    for request, code in (
        (long_name, grpc.StatusCode.NOT_FOUND),
        (extra, grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            prediction_stub.Predict(request, timeout=60)
        assert raised.value.code() == code
        assert raised.value.details().endswith("...")


def test_a_body_past_the_message_limit_is_413_before_it_is_read(server, local_only):
    """REST had no limit: a body was read whole whatever its size (gRPC stops at 256 MB)."""
    host, port = server.rest_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/models/qa:predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(MAX_MESSAGE_BYTES + 1))
    connection.endheaders(b'{"inputs": [')  # the rest is never sent: the answer comes first
    answer = connection.getresponse()
    assert answer.status == 413
    assert json.loads(answer.read()) == {
        "error": f"The request body is larger than {MAX_MESSAGE_BYTES} bytes"
    }
    connection.close()


def test_chunked_bodies_are_bounded_and_answered_once(server, local_only):
    """A bad chunk was a 500; a chunk past the limit was read whole (minutes of CPU for 400
    MB, gRPC deadlines missed meanwhile); a chunked body a GET left unread was parsed as the
    next request (a second answer)."""
    head = b"POST /v1/models/qa:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    status, headers, body = parse_answer(send_raw(server.rest_url, head + b"zz\r\nab\r\n0\r\n\r\n"))
    assert status == 400 and headers["connection"] == "close"
    assert json.loads(body)["error"].startswith("malformed chunked body")
    # The size line of a chunk past the limit is all the server reads of it.
    status, _, body = parse_answer(send_raw(server.rest_url, head + b"%x\r\n" % MAX_MESSAGE_BYTES))
    assert status == 413 and "larger than" in json.loads(body)["error"]
    inner = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\n\r\n"
    unread = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    received = send_raw(server.rest_url, unread + b"%x\r\n%s\r\n0\r\n\r\n" % (len(inner), inner))
    status, headers, _ = parse_answer(received)
    assert status == 200 and headers["connection"] == "close"
    assert received.count(b"HTTP/1.1 ") == 1


def test_rest_headers_past_their_limit_or_folded_are_refused(server, local_only):
    """cheroot read a request's headers whatever their size: 300 MB grew the server by 400 MB."""
    flood = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\nX-Flood: " + b"a" * MAX_REST_HEADER_BYTES
    status, headers, _ = parse_answer(send_raw(server.rest_url, flood + b"\r\n\r\n"))
    assert status == 413 and headers["connection"] == "close"
    long_url = b"GET /v1/models/" + b"a" * MAX_REST_HEADER_BYTES + b" HTTP/1.1\r\n\r\n"
    assert send_raw(server.rest_url, long_url).startswith(b"HTTP/1.1 414 ")
    # A first header line folded onto nothing raised UnboundLocalError in cheroot: a 500.
    folded = send_raw(server.rest_url, b"GET /v1/models/qa HTTP/1.1\r\n Host: x\r\n\r\n")
    assert folded.startswith(b"HTTP/1.1 400 ")
    # A negative length was a body read to the connection's end: the request hung.
    negative = b"POST /v1/models/qa:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}"
    assert send_raw(server.rest_url, negative).startswith(b"HTTP/1.1 400 ")


def test_rest_transfer_codings_other_than_chunked_or_with_a_length_are_400_and_closed(
    server, local_only
):
    """cheroot answered an unknown coding 501 (a 5xx for a client's header), and a request
    with both ``chunked`` and a length kept its connection (RFC 9112 section 6.1: close it),
    answering the request pipelined after it."""
    after = b"GET /v1/models/qa HTTP/1.1\r\nHost: x\r\n\r\n"
    post = b"POST /v1/models/qa:predict HTTP/1.1\r\nHost: x\r\n"
    gzip = post + b"Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}"
    both = post + b"Transfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    for wire in (gzip, both):
        received = send_raw(server.rest_url, wire + after)
        assert received.startswith(b"HTTP/1.1 400 ")
        assert received.count(b"HTTP/1.1 ") == 1  # closed: the next request is not read


def test_a_gzip_body_is_read_as_tf_serving_reads_it(server):
    """TF Serving's REST server decompresses a body whose Content-Encoding holds ``gzip``
    (net_http's ``RequestHandlerOptions.auto_uncompress_input``, on by default); this server
    parsed the compressed bytes as JSON and blamed the client's JSON (400 'JSON Parse error')."""
    url = f"{server.rest_url}/v1/models/qa:predict"
    body = json.dumps({"inputs": {key: value.tolist() for key, value in QA_INPUTS.items()}})
    plain = requests.post(url, data=body, timeout=30)
    for coding in ("gzip", "x-gzip", "GZIP"):
        headers = {"Content-Encoding": coding, "Content-Type": "application/json"}
        answer = requests.post(url, data=gzip.compress(body.encode()), headers=headers, timeout=30)
        assert (answer.status_code, answer.json()) == (200, plain.json()), coding


def test_a_gzip_body_is_bounded_and_checked(server, local_only):
    """A gzip body is decompressed only up to TF Serving's bound (net_http's
    ``ZLib::kMaxUncompressedBytes``, 100 MiB): ~100 kB on the wire is no 1 GB in memory.
    A body that is no gzip stream is the client's framing, named as such."""
    url = f"{server.rest_url}/v1/models/qa:predict"
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    bomb = gzip.compress(b" " * (MAX_GZIP_BYTES + 1), compresslevel=9)
    answer = requests.post(url, data=bomb, headers=headers, timeout=60)
    assert answer.status_code == 413
    assert answer.json() == {
        "error": f"The request body is larger than {MAX_GZIP_BYTES} bytes once decompressed"
    }
    for data in (b'{"inputs": {}}', gzip.compress(b"{}")[:-3]):
        answer = requests.post(url, data=data, headers=headers, timeout=30)
        assert answer.status_code == 400
        assert answer.json()["error"].startswith("The request body is not valid gzip")


@pytest.mark.parametrize(
    ("method", "data", "code"),
    [
        ("/tensorflow.serving.PredictionService/Predict", b"\xff\xff\xff", "INVALID_ARGUMENT"),
        # a model name of bad UTF-8 (ModelSpec.name is a proto3 string)
        ("/tensorflow.serving.PredictionService/Predict", b"\x0a\x04\x0a\x02\xff\xfe", None),
        ("/tensorflow.serving.PredictionService/GetModelMetadata", b"\x0a\xff", None),
        ("/tensorflow.serving.ModelService/GetModelStatus", b"\x0a\x05\x0a", None),
        ("/grpc.health.v1.Health/Check", b"\x0a\x02\xff\xfe", None),
        ("/tensorflow.serving.PredictionService/Classify", b"", "UNIMPLEMENTED"),
        ("/tensorflow.serving.PredictionService/MultiInference", b"", "UNIMPLEMENTED"),
        ("/tensorflow.serving.ModelService/HandleReloadConfigRequest", b"", "UNIMPLEMENTED"),
    ],
)
def test_a_request_the_server_cannot_take_is_no_server_fault(
    channel, server, local_only, method, data, code
):
    """A request that is no valid protobuf was INTERNAL 'Exception deserializing request!'
    (a server fault) with an ERROR traceback per call; a method this server does not
    implement logged 'Exception calling application' with a traceback per call too: any
    client could fill the log. Now the client's code, and nothing logged."""
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    before = server.stderr_text()
    with pytest.raises(grpc.RpcError) as raised:
        call(data, timeout=30)
    assert raised.value.code().name == (code or "INVALID_ARGUMENT")
    if code == "UNIMPLEMENTED":
        assert (
            raised.value.details()
            == f"{method.rsplit('/', 1)[1]} is not implemented by this model server"
        )
    else:
        assert raised.value.details().startswith("the request is no valid ")
    assert server.stderr_text()[len(before) :].count("Traceback") == 0


def test_an_empty_version_label_is_no_label_tf_serving_knows(prediction_stub):
    """Found by hostile pass 7: a ModelSpec whose ``version_label`` is set to ``""`` was read
    as no label (the latest version answered); TF Serving looks the label up and refuses it."""
    request = predict_request("qa", QA_INPUTS)
    request.model_spec.version_label = ""
    assert request.model_spec.WhichOneof("version_choice") == "version_label"
    metadata = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata.model_spec.CopyFrom(request.model_spec)
    for call, message in (
        (prediction_stub.Predict, request),
        (prediction_stub.GetModelMetadata, metadata),
    ):
        with pytest.raises(grpc.RpcError) as raised:
            call(message, timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert raised.value.details().startswith("Unrecognized servable version label")
