"""The tiny repo's versions: signatures match their specs, assets, never-overwritten versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.contract import version_numbers
from serving.spec import SPEC_FILE, load_spec
from training.export import VersionExistsError, next_version
from training.tiny import build_tiny_repo, export_spec_model


@pytest.mark.parametrize("name", contract.MODEL_NAMES)
def test_signature_names_and_dtypes(tiny_repo: Path, name: str) -> None:
    spec = load_spec(tiny_repo / name / "1" / contract.ASSETS_DIR / SPEC_FILE)
    loaded = tf.saved_model.load(str(tiny_repo / name / "1"))
    function = loaded.signatures[spec.signature_name]
    _, inputs = function.structured_input_signature
    assert set(inputs) == {item.tensor for item in spec.inputs}
    assert set(inputs) == set(contract.SIGNATURES[name].inputs)  # the names the API had
    for tensor in inputs.values():
        assert tensor.dtype == tf.int32
        assert tensor.shape.as_list() == [None, None]
    assert set(function.structured_outputs) == {head.output for head in spec.heads}


@pytest.mark.parametrize("name", contract.MODEL_NAMES)
def test_assets_present_and_card_pins_tokenizer(tiny_repo: Path, name: str) -> None:
    assets = tiny_repo / name / "1" / contract.ASSETS_DIR
    for file_name in (
        contract.TOKENIZER_FILE,
        SPEC_FILE,
        contract.MODEL_CARD_FILE,
        contract.WARMUP_FILE,
    ):
        assert (assets / file_name).is_file(), file_name
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    from serving.tokenization import file_sha256

    sha256 = file_sha256(assets / contract.TOKENIZER_FILE)
    assert card["tokenizer_sha256"] == {contract.TOKENIZER_FILE: sha256}
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
    original = (tmp_path / "qa" / "1" / "saved_model.pb").read_bytes()
    assets = tmp_path / "qa" / "1" / contract.ASSETS_DIR
    with pytest.raises(VersionExistsError):
        export_spec_model(
            tmp_path,
            load_spec(assets / SPEC_FILE),
            "qa",
            {contract.TOKENIZER_FILE: assets / contract.TOKENIZER_FILE},
            version=1,
        )
    assert (tmp_path / "qa" / "1" / "saved_model.pb").read_bytes() == original
    assert 'name: "similarity"' in (tmp_path / contract.MODELS_CONFIG_FILE).read_text()
