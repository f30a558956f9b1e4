"""Request builders and in-process references shared by the conformance tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

QA_INPUTS = {
    "article_ids": np.array([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 15, 16]], dtype=np.int32),
    "question_ids": np.array([[3, 4, 5], [6, 7, 8]], dtype=np.int32),
}
PROFILE_INPUTS = {"post_ids": np.array([[5, 6, 7, 8], [9, 10, 11, 12]], dtype=np.int32)}


def predict_request(
    name: str,
    inputs: dict[str, np.ndarray],
    *,
    version: int | None = None,
    label: str = "",
    signature_name: str = "",
    output_filter: tuple[str, ...] = (),
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if version is not None:
        request.model_spec.version.value = version
    if label:
        request.model_spec.version_label = label
    if signature_name:
        request.model_spec.signature_name = signature_name
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    request.output_filter.extend(output_filter)
    return request


def reference_outputs(
    repo: Path, name: str, inputs: dict[str, Any], version: int = 1
) -> dict[str, np.ndarray]:
    """The SavedModel's own answer, computed in this process."""
    model = tf.saved_model.load(str(repo / name / str(version)))
    outputs = model.signatures["serving_default"](
        **{key: tf.constant(value) for key, value in inputs.items()}
    )
    return {key: value.numpy() for key, value in outputs.items()}


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    """Bounded retry: poll ``condition`` every 0.2 s until true, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
