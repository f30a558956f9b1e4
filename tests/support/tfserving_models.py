"""Small TF1-style SavedModels shaped like TF Serving's own test models, for conformance tests.

TF Serving's test data (tensorflow_serving/servables/tensorflow/testdata/, Apache-2.0) is not
copied into this repository; these builders recreate the same signatures so its documented
requests and answers can be checked here:

- ``half_plus_two/00000123``: y = 0.5 * x + 2 where x comes from parsing ``tf_example``
  (declared shape [None, 1]); signatures ``serving_default`` (predict x -> y),
  ``regress_x_to_y`` and ``classify_x_to_y`` (as saved_model_half_plus_two.py builds them).
- ``half_plus_three/00000123``: y = 0.5 * x + 3 with a placeholder x of unknown shape (a TF1
  signature without declared shapes, like saved_model_half_plus_three).
- ``strings/1``: string input ``text`` -> ``upper`` (string), ``text_bytes`` (the input,
  answered as base64 over REST), ``length`` (int32).
- ``ids/1``: int32 ``ids`` -> ``ids_out`` (identity); signature ``int8``: int8 ``small`` ->
  ``small_out``.

``python -m tests.support.tfserving_models DIR`` writes the repo (with models.config) so a
real TF Serving can serve it for the conformance suite.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2

v1 = tf.compat.v1
CONFIG_ENTRY = '  config { name: "%s" base_path: "%s" model_platform: "tensorflow" }\n'
Builder = Callable[[], dict[str, meta_graph_pb2.SignatureDef]]


def _save(path: Path, build: Builder) -> None:
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        signatures = build()
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(
            session, [v1.saved_model.tag_constants.SERVING], signature_def_map=signatures
        )
        builder.save()


def _info(tensor: tf.Tensor) -> meta_graph_pb2.TensorInfo:
    return v1.saved_model.utils.build_tensor_info(tensor)


def _half_plus_two() -> dict[str, meta_graph_pb2.SignatureDef]:
    a = v1.Variable(0.5, name="a")
    b = v1.Variable(2.0, name="b")
    serialized = v1.placeholder(tf.string, name="tf_example", shape=[None])
    features = v1.parse_example(serialized, {"x": v1.FixedLenFeature([1], tf.float32)})
    x = tf.identity(features["x"], name="x")
    y = tf.identity(a * x + b, name="y")
    build = v1.saved_model.signature_def_utils.build_signature_def
    constants = v1.saved_model.signature_constants
    return {
        "serving_default": build({"x": _info(x)}, {"y": _info(y)}, constants.PREDICT_METHOD_NAME),
        "regress_x_to_y": build(
            {constants.REGRESS_INPUTS: _info(serialized)},
            {constants.REGRESS_OUTPUTS: _info(y)},
            constants.REGRESS_METHOD_NAME,
        ),
        "classify_x_to_y": build(
            {constants.CLASSIFY_INPUTS: _info(serialized)},
            {constants.CLASSIFY_OUTPUT_SCORES: _info(y)},
            constants.CLASSIFY_METHOD_NAME,
        ),
    }


def _half_plus_three() -> dict[str, meta_graph_pb2.SignatureDef]:
    x = v1.placeholder(tf.float32, name="x")  # no shape: unknown rank in the signature
    y = tf.identity(v1.Variable(0.5, name="a") * x + v1.Variable(3.0, name="c"), name="y")
    predict = v1.saved_model.signature_def_utils.predict_signature_def
    return {"serving_default": predict({"x": x}, {"y": y})}


def _strings() -> dict[str, meta_graph_pb2.SignatureDef]:
    text = v1.placeholder(tf.string, name="text", shape=[None])
    outputs = {
        "upper": tf.strings.upper(text),
        "text_bytes": tf.identity(text),
        "length": tf.strings.length(text),
    }
    predict = v1.saved_model.signature_def_utils.predict_signature_def
    return {"serving_default": predict({"text": text}, outputs)}


def _ids() -> dict[str, meta_graph_pb2.SignatureDef]:
    ids = v1.placeholder(tf.int32, name="ids", shape=[None])
    small = v1.placeholder(tf.int8, name="small", shape=[None])
    predict = v1.saved_model.signature_def_utils.predict_signature_def
    return {
        "serving_default": predict({"ids": ids}, {"ids_out": tf.identity(ids)}),
        "int8": predict({"small": small}, {"small_out": tf.identity(small)}),
    }


MODELS: dict[str, tuple[str, Builder]] = {
    "half_plus_two": ("00000123", _half_plus_two),
    "half_plus_three": ("00000123", _half_plus_three),
    "strings": ("1", _strings),
    "ids": ("1", _ids),
}


def build_conformance_repo(repo: Path) -> Path:
    """Write the four models and a models.config (relative base paths) into repo."""
    entries = []
    for name, (folder, build) in MODELS.items():
        _save(repo / name / folder, build)
        entries.append(CONFIG_ENTRY % (name, name))
    (repo / "models.config").write_text("model_config_list {\n" + "".join(entries) + "}\n")
    return repo


if __name__ == "__main__":
    build_conformance_repo(Path(sys.argv[1]))
