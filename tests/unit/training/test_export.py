"""The export contract: signature names and dtypes, assets, atomic never-overwriting versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.contract import version_numbers
from training.export import VersionExistsError, next_version
from training.tiny import build_tiny_repo


@pytest.mark.parametrize("name", contract.MODEL_NAMES)
def test_signature_names_and_dtypes(tiny_repo: Path, name: str) -> None:
    loaded = tf.saved_model.load(str(tiny_repo / name / "1"))
    function = loaded.signatures[contract.SIGNATURE_NAME]
    _, inputs = function.structured_input_signature
    assert set(inputs) == set(contract.SIGNATURES[name].inputs)
    for spec in inputs.values():
        assert spec.dtype == tf.int32
        assert spec.shape.as_list() == [None, None]
    assert set(function.structured_outputs) == set(contract.SIGNATURES[name].outputs)


@pytest.mark.parametrize("name", contract.MODEL_NAMES)
def test_assets_present_and_card_pins_tokenizer(tiny_repo: Path, name: str) -> None:
    assets = tiny_repo / name / "1" / contract.ASSETS_DIR
    for file_name in (
        contract.TOKENIZER_FILE,
        contract.LABELS_FILE,
        contract.MODEL_CARD_FILE,
        contract.PREPROCESSING_FILE,
        contract.WARMUP_FILE,
    ):
        assert (assets / file_name).is_file(), file_name
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    from serving.tokenization import file_sha256

    assert card["tokenizer_sha256"] == file_sha256(assets / contract.TOKENIZER_FILE)
    assert card["version"] == 1


def test_warmup_records_are_prediction_logs(tiny_repo: Path) -> None:
    from tensorflow_serving.apis import prediction_log_pb2

    path = tiny_repo / "qa" / "1" / contract.ASSETS_DIR / contract.WARMUP_FILE
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert records
    log = prediction_log_pb2.PredictionLog.FromString(records[0])
    assert log.predict_log.request.model_spec.name == "qa"
    assert set(log.predict_log.request.inputs) == {"article_ids", "question_ids"}
    ids = tf.make_ndarray(log.predict_log.request.inputs["article_ids"])
    assert ids.dtype == np.int32


def test_versions_grow_and_never_overwrite(tmp_path: Path) -> None:
    build_tiny_repo(tmp_path, versions=2)
    assert version_numbers(tmp_path / "qa") == [1, 2]
    assert next_version(tmp_path / "qa") == 3
    assert not [p for p in (tmp_path / "qa").iterdir() if p.name.startswith(".")]
    from training import export

    original = (tmp_path / "qa" / "1" / "saved_model.pb").read_bytes()
    with pytest.raises(VersionExistsError):
        export.export_version(
            None,  # never reached: the version check comes first
            name="qa",
            repo=tmp_path,
            tokenizer_path=tmp_path / "none",
            preprocessing={},
            labels={},
            model_card={},
            warmup_batches=[],
            version=1,
        )
    assert (tmp_path / "qa" / "1" / "saved_model.pb").read_bytes() == original
    assert 'name: "similarity"' in (tmp_path / contract.MODELS_CONFIG_FILE).read_text()
