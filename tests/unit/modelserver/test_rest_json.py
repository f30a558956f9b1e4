"""TF Serving's REST request and response formats."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from serving.modelserver.errors import ServingError
from serving.modelserver.rest_json import parse_predict_body, render_outputs
from serving.modelserver.servable import InputSpec

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


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"instances": [], "inputs": {}},
        {"instances": []},
        {"inputs": {"post_ids": [[1.5]]}},
        {"inputs": {"post_ids": [[1, 2], [3]]}},
        {"inputs": {"post_ids": [["a"]]}},
        [1, 2],
    ],
    ids=["no-key", "both", "empty", "float-for-int", "ragged", "text-for-int", "not-object"],
)
def test_bad_bodies_are_invalid_argument(body):
    with pytest.raises(ServingError) as raised:
        parse_predict_body(body, ONE)
    assert raised.value.http_status == 400


def test_unknown_input_is_kept_for_the_signature_check():
    inputs, _ = parse_predict_body({"inputs": {"post_ids": [[1]], "other": [[2]]}}, ONE)
    assert set(inputs) == {"post_ids", "other"}


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
