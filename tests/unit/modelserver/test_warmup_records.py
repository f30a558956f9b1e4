"""Warmup records are read with the requests' bounded tensor parser.

Found by the adversarial repo pass 7: a warmup record whose tensor declares a shape past its
values (a garbled ``tf_serving_warmup_requests``) was filled by ``tf.make_ndarray`` whatever
its size: 2**21 rows here ran the model on them, and a shape of billions allocated that many
elements at load, able to take the whole server down. Such a record fails the version's load,
as a gRPC request with that tensor is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from serving.contract import ASSETS_DIR, WARMUP_FILE
from serving.modelserver.config import ModelSettings
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.versions import RetryPolicy


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    return repo / "half_plus_two"


def _write_warmup(version: Path, rows: int) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["x"]
    tensor.dtype = tf.float32.as_datatype_enum
    tensor.tensor_shape.dim.add(size=rows)
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(1.0)  # one value filled over every element
    log = prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request)
    )
    (version / ASSETS_DIR).mkdir(exist_ok=True)
    with tf.io.TFRecordWriter(str(version / ASSETS_DIR / WARMUP_FILE)) as writer:
        writer.write(log.SerializeToString())


def test_a_warmup_record_filling_past_the_request_limit_fails_the_load(
    half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base)
    (version,) = base.iterdir()
    _write_warmup(version, 2**21)
    manager = _one_model_manager(base)
    try:
        manager.poll_once()
        (state,) = manager.statuses("m")
        assert state.state == "END"
        assert state.error_message.startswith("Loading failed (ServingError)")
        assert "a fill past 1048576 elements is refused" in caplog.text
        _write_warmup(version, 4)  # a warmup of the requests' size loads
        manager.poll_once()
        assert [state.state for state in manager.statuses("m")] == ["AVAILABLE"]
    finally:
        manager.stop()


@pytest.mark.parametrize(
    ("cut", "stage"),
    [
        (f"{ASSETS_DIR}/{WARMUP_FILE}", f"replaying its warmup requests ({ASSETS_DIR}/"),
        ("variables/variables.data-00000-of-00001", "reading its SavedModel (saved_model.pb"),
    ],
    ids=["warmup", "variables"],
)
def test_a_failed_load_names_the_file_it_was_reading(
    half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, cut: str, stage: str
) -> None:
    # Found by the new-user trial (newuser9): a truncated warmup file or variables file (a
    # copy cut short) was logged in TensorFlow's words alone, naming no file ("truncated
    # record at 0 ... [Op:IteratorGetNext]", "Graph execution error:" and two more lines).
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base)
    (version,) = base.iterdir()
    _write_warmup(version, 4)
    data = (version / cut).read_bytes()
    (version / cut).write_bytes(data[: len(data) // 2])
    manager = _one_model_manager(base)
    try:
        manager.poll_once()
        (state,) = manager.statuses("m")
        assert state.state == "END"
        (line,) = [r.getMessage() for r in caplog.records if "failed while" in r.getMessage()]
        assert stage in line and "\n" not in line
    finally:
        manager.stop()


def _one_model_manager(base: Path) -> ModelManager:
    """A manager of model ``m`` at ``base``, polled by the test, never retrying a load."""
    return ModelManager(
        [ModelSettings("m", base)], ServerMetrics(), poll_seconds=0, retry=RetryPolicy(0, 60.0)
    )
