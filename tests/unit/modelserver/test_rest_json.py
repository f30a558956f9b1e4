"""TF Serving's REST request and response formats."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from serving.modelserver.errors import ServingError
from serving.modelserver.rest_json import parse_predict_body, render_outputs
from serving.modelserver.signature_checks import InputSpec

QA = [InputSpec("article_ids", tf.int32, (-1, -1)), InputSpec("question_ids", tf.int32, (-1, -1))]
ONE = [InputSpec("post_ids", tf.int32, (-1, -1))]


def test_rows_of_objects_become_columns():
    body = {"instances": [{"article_ids": [1, 2], "question_ids": [3]}] * 2}
    inputs, rows = parse_predict_body(body, QA)
    assert rows
    assert inputs["article_ids"].dtype == np.int32
    assert inputs["article_ids"].shape == (2, 2)


def test_plain_rows_need_a_single_input():
    inputs, _ = parse_predict_body({"instances": [[1, 2], [3, 4]]}, ONE)
    assert inputs["post_ids"].shape == (2, 2)
    with pytest.raises(ServingError, match="article_ids"):
        parse_predict_body({"instances": [[1, 2]]}, QA)


def test_columnar_inputs():
    inputs, rows = parse_predict_body({"inputs": {"post_ids": [[1, 2, 3]]}}, ONE)
    assert not rows
    assert inputs["post_ids"].tolist() == [[1, 2, 3]]


# Messages: tensorflow_serving/util/json_tensor.cc (FillPredictRequestFromJson and helpers).
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Missing 'inputs' or 'instances' key"),
        ({"instances": [], "inputs": {}}, "expecting only one of 'inputs' or 'instances'"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"instances": {"a": 1}}, "Expecting 'instances' to be an list/array"),
        ({"inputs": {"post_ids": [[1.5]]}}, "JSON Value: 1.5 Type: Number is not of expected"),
        ({"inputs": {"post_ids": [[1, 2], [3]]}}, "Encountered list at unexpected size: 1"),
        ({"inputs": {"post_ids": [["a"]]}}, 'JSON Value: "a" Type: String is not of expected'),
        ({"inputs": {"post_ids": [[True]]}}, "Type: True is not of expected type: int32"),
        ({"inputs": {"post_ids": [[1, [2]]]}}, "Encountered list at unexpected level: 2"),
        ({"inputs": {"other": [[1]]}}, "Missing named input: post_ids in 'inputs' object."),
        ({"instances": [[1, 2], [3]]}, "Failed to process element: 1 of 'instances' list"),
        ({"instances": [[1, 2], [3, 4, 5]]}, "Expecting tensor size: 2 but got: 3"),
        ({"instances": [[1, 2], {"post_ids": [1]}]}, "Expecting value/list but got object"),
        ({"instances": [{"post_ids": [1]}, [1]]}, "Expecting object but got list at item 1"),
        ({"instances": [{"nope": [1]}]}, "does not have named input: nope"),
        ([1, 2], "JSON Value: [1,2] Is not object"),
        ("text", 'JSON Value: "text" Is not object'),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 10 else None,
)
def test_bad_bodies_are_invalid_argument_with_tf_serving_words(body, message):
    with pytest.raises(ServingError) as raised:
        parse_predict_body(body, ONE)
    assert raised.value.http_status == 400
    assert message in raised.value.message


def test_extra_named_inputs_are_ignored_as_tf_serving_does():
    inputs, _ = parse_predict_body({"inputs": {"post_ids": [[1]], "other": [[2]]}}, ONE)
    assert set(inputs) == {"post_ids"}


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (tf.int32, [4294967329, 4294967302]),
        (tf.int32, [2**31]),
        (tf.int8, [128]),
        (tf.uint8, [-1]),
        (tf.int16, [40000]),
        (tf.uint32, [2**32]),
        (tf.int64, [2**63]),
        (tf.uint64, [2**64]),
    ],
)
def test_integers_out_of_their_dtype_range_are_rejected_not_narrowed(dtype, values):
    spec = InputSpec("ids", dtype, (-1,))
    with pytest.raises(ServingError, match=f"is not of expected type: {dtype.name}"):
        parse_predict_body({"instances": values}, [spec])
    with pytest.raises(ServingError, match=f"is not of expected type: {dtype.name}"):
        parse_predict_body({"inputs": values}, [spec])


def test_integers_at_their_dtype_limits_pass_unchanged():
    spec = InputSpec("ids", tf.int64, (-1,))
    inputs, _ = parse_predict_body({"inputs": [2**63 - 1, -(2**63)]}, [spec])
    assert inputs["ids"].tolist() == [2**63 - 1, -(2**63)]


def test_b64_objects_are_string_inputs():
    spec = InputSpec("text", tf.string, (-1,))
    inputs, _ = parse_predict_body({"instances": [{"b64": "aGk="}, "plain"]}, [spec])
    assert inputs["text"].tolist() == [b"hi", b"plain"]
    with pytest.raises(ServingError, match="Unable to base64 decode"):
        parse_predict_body({"inputs": [{"b64": "***"}]}, [spec])
    with pytest.raises(ServingError, match="Type: Object is not of expected type: int32"):
        parse_predict_body({"inputs": [{"b64": "aGk="}]}, ONE)


def test_string_outputs_are_text_and_bytes_outputs_b64():
    outputs = {
        "label": np.array([b"yes", b"no"], dtype=object),
        "raw_bytes": np.array([b"\x00\xff", b"ok"], dtype=object),
    }
    assert render_outputs(outputs, row_format=False) == {
        "outputs": {"label": ["yes", "no"], "raw_bytes": [{"b64": "AP8="}, {"b64": "b2s="}]}
    }
    assert render_outputs(outputs, row_format=True)["predictions"][0] == {
        "label": "yes",
        "raw_bytes": {"b64": "AP8="},
    }


def test_render_rows_and_columns():
    one = {"score": np.array([0.5, 0.25], np.float32)}
    many = {"age": np.array([30.0, 40.0]), "income_probs": np.array([[0.1, 0.9], [0.8, 0.2]])}
    assert render_outputs(one, row_format=True) == {"predictions": [0.5, 0.25]}
    assert render_outputs(one, row_format=False) == {"outputs": [0.5, 0.25]}
    assert render_outputs(many, row_format=True)["predictions"][1] == {
        "age": 40.0,
        "income_probs": [0.8, 0.2],
    }
    assert render_outputs(many, row_format=False)["outputs"]["age"] == [30.0, 40.0]


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (tf.int32, [1, True]),  # numpy read both as int: [1, 1]
        (tf.int32, [[True], [2]]),
        (tf.float32, [[1.0], [False]]),
    ],
    ids=str,
)
def test_a_boolean_among_numbers_is_refused_as_tf_serving_does(dtype, values):
    spec = InputSpec("x", dtype, (-1,))
    for body in ({"inputs": values}, {"instances": values}):
        with pytest.raises(ServingError, match=r"Type: (True|False) is not of expected type"):
            parse_predict_body(body, [spec])
    # a body without true/false (rest.py looks at its bytes) may take numpy's fast path
    inputs, _ = parse_predict_body({"inputs": [1, 2]}, [spec], booleans=False)
    assert inputs["x"].tolist() == [1, 2]


def test_an_integer_no_double_holds_is_refused_for_a_float_input():
    """10**400 is an int in Python's JSON; numpy's float conversion raised OverflowError."""
    spec = InputSpec("x", tf.float32, (-1,))
    with pytest.raises(ServingError, match="is not of expected type: float32"):
        parse_predict_body({"inputs": [1.5, 10**400]}, [spec])
    inputs, _ = parse_predict_body({"inputs": [1.5, 10**38]}, [spec])
    assert inputs["x"].dtype == np.float32


def test_a_lone_surrogate_is_no_text():
    """json reads "\\ud800" as a lone surrogate, which has no UTF-8 (UnicodeEncodeError)."""
    spec = InputSpec("text", tf.string, (-1,))
    with pytest.raises(ServingError, match="surrogate pair in string is invalid") as raised:
        parse_predict_body({"inputs": ["ok", "\ud800"]}, [spec])
    assert raised.value.code.name == "INVALID_ARGUMENT"


@pytest.mark.parametrize("booleans", [True, False])
def test_inputs_of_ml_dtypes_are_400_not_500(booleans):
    """bfloat16, int4, quantized inputs are numpy kind 'V' (no iinfo: ValueError on the fast
    path); float8 took no Python int past int64 (TypeError)."""
    for dtype in (tf.bfloat16, tf.as_dtype(types_pb2.DT_INT4), tf.qint8):
        with pytest.raises(ServingError, match=f"is not of expected type: {dtype.name}"):
            parse_predict_body({"inputs": [1, 2]}, [InputSpec("x", dtype, (-1,))], booleans)
    spec = InputSpec("x", tf.as_dtype(types_pb2.DT_FLOAT8_E5M2), (-1,))
    inputs, _ = parse_predict_body({"inputs": [2**70, 1.5]}, [spec], booleans)
    assert inputs["x"].astype(np.float32).tolist() == [np.inf, 1.5]
