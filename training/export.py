"""Export a trained Keras model as a versioned SavedModel in the layout TF Serving loads.

``model_repo/<name>/<version>/`` gets ``saved_model.pb``, ``variables/`` and
``assets.extra/`` (tokenizer, labels, preprocessing, model card, warmup requests). A version
is written to a hidden temporary folder and renamed into place, so a half-written version is
never visible, and an existing version is never overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from serving import contract
from serving.tokenization import file_sha256

IdBatch = Mapping[str, npt.NDArray[np.int32]]
SCALAR_OUTPUTS = frozenset({"age", "gender_prob", "score"})


class VersionExistsError(FileExistsError):
    """Raised when an export would overwrite an existing model version."""


def next_version(model_dir: Path) -> int:
    """One more than the highest existing version (1 for a new model)."""
    versions = contract.version_numbers(model_dir)
    return versions[-1] + 1 if versions else 1


def export_version(
    model: keras.Model,
    *,
    name: str,
    repo: Path,
    tokenizer_path: Path,
    preprocessing: Mapping[str, Any],
    labels: Mapping[str, Any],
    model_card: Mapping[str, Any],
    warmup_batches: Sequence[IdBatch],
    version: int | None = None,
) -> Path:
    """Write ``repo/name/<version>/`` atomically and return its path."""
    signature = contract.SIGNATURES[name]
    # The contract's outputs plus the optional ones this architecture has.
    outputs = (
        *signature.outputs,
        *(o for o in signature.optional_outputs if o in model.output_names),
    )
    signature = contract.Signature(signature.inputs, outputs)
    model_dir = repo / name
    model_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(model_dir) if version is None else version
    final_dir = model_dir / str(version)
    if final_dir.exists():
        raise VersionExistsError(f"{final_dir} exists; versions are never overwritten")
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{version}-", dir=model_dir))
    try:
        _write_saved_model(model, signature, staging)
        assets = staging / contract.ASSETS_DIR
        assets.mkdir()
        shutil.copyfile(tokenizer_path, assets / contract.TOKENIZER_FILE)
        card = {
            **model_card,
            "name": name,
            "version": version,
            "signature": {"inputs": list(signature.inputs), "outputs": list(signature.outputs)},
            "tokenizer_sha256": file_sha256(assets / contract.TOKENIZER_FILE),
        }
        _write_json(assets / contract.PREPROCESSING_FILE, preprocessing)
        _write_json(assets / contract.LABELS_FILE, labels)
        _write_json(assets / contract.MODEL_CARD_FILE, card)
        write_warmup_requests(assets / contract.WARMUP_FILE, name, warmup_batches)
        if final_dir.exists():  # another exporter won the race for this number
            raise VersionExistsError(f"{final_dir} appeared during export")
        os.rename(staging, final_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_server_configs(repo)
    return final_dir


def _write_saved_model(model: keras.Model, signature: contract.Signature, path: Path) -> None:
    input_specs = [tf.TensorSpec([None, None], tf.int32, name=key) for key in signature.inputs]

    def serve(*tensors: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = model(dict(zip(signature.inputs, tensors, strict=True)), training=False)
        return {key: _shape_output(key, outputs[key]) for key in signature.outputs}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(contract.SIGNATURE_NAME, serve, input_signature=input_specs)
    archive.write_out(str(path), verbose=False)


def _shape_output(key: str, tensor: tf.Tensor) -> tf.Tensor:
    tensor = tf.cast(tensor, tf.float32)
    # Heads with one unit come out as [batch, 1]; the contract promises [batch].
    return tf.reshape(tensor, [-1]) if key in SCALAR_OUTPUTS else tensor


def write_warmup_requests(path: Path, name: str, batches: Sequence[IdBatch]) -> None:
    """Write TF Serving's warmup file: a TFRecord of PredictionLog records."""
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch in batches:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=name, signature_name=contract.SIGNATURE_NAME)
            )
            for key, value in batch.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(np.asarray(value, np.int32)))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def write_server_configs(repo: Path, num_versions: int = 1) -> None:
    """Write models.config, monitoring.config and batching parameters for the models in repo.

    ``base_path`` is relative to the repo folder: the local server resolves it against the
    config file, and the official server runs with the repo as its working directory.
    A models.config that a person edited (no generated marker) is left alone.
    """
    config_path = repo / contract.MODELS_CONFIG_FILE
    if not config_path.exists() or config_path.read_text().startswith(GENERATED_MARKER):
        names = [name for name in contract.MODEL_NAMES if contract.version_numbers(repo / name)]
        config_path.write_text(render_models_config(names, num_versions))
    (repo / contract.MONITORING_CONFIG_FILE).write_text(MONITORING_CONFIG)
    batching_path = repo / contract.BATCHING_CONFIG_FILE
    if not batching_path.exists():
        batching_path.write_text(BATCHING_PARAMETERS)


GENERATED_MARKER = "# Generated by training.export"


def render_models_config(names: Sequence[str], num_versions: int = 1) -> str:
    """A TF Serving ``model_config_list`` text proto for the named models."""
    blocks = "".join(
        "  config {\n"
        f'    name: "{name}"\n'
        f'    base_path: "{name}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ latest {{ num_versions: {num_versions} }} }}\n"
        "  }\n"
        for name in names
    )
    header = f"{GENERATED_MARKER}; edit freely, then remove this line."
    return f"{header}\nmodel_config_list {{\n{blocks}}}\n"


MONITORING_CONFIG = """prometheus_config {
  enable: true
  path: "/monitoring/prometheus/metrics"
}
"""

BATCHING_PARAMETERS = """max_batch_size { value: 32 }
batch_timeout_micros { value: 2000 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: true
"""


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
