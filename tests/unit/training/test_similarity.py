"""The similarity task: shared encoder, exact symmetry, scores in [0, 1], a tiny exported run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.spec import SPEC_FILE, ScoreHead, load_spec
from training import minilm
from training.models.similarity import build_similarity_model, compile_similarity_model
from training.tasks.base import RunSettings
from training.tasks.similarity import SimilarityTask, predict_sorted_by_length

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sts"
TINY_MINILM = minilm.MiniLMConfig(
    vocab_size=60,
    hidden_size=8,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=16,
    max_position_embeddings=32,
)


def _ids(seed: int, rows: int = 4, width: int = 9) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, 60, size=(rows, width)).astype(np.int32)
    ids[0, 5:] = contract.PAD_ID
    return ids


def _assert_symmetric(model) -> None:
    left, right = _ids(1), _ids(2, width=6)
    forward = model.predict({"left_ids": left, "right_ids": right}, verbose=0)["score"]
    backward = model.predict({"left_ids": right, "right_ids": left}, verbose=0)["score"]
    np.testing.assert_array_equal(forward, backward)
    assert forward.shape == (4, 1) and np.all((forward >= 0) & (forward <= 1))


@pytest.mark.parametrize("arch", ["classic", "minilm"])
def test_siamese_model_shares_one_encoder_and_is_symmetric(arch):
    hparams = {**SimilarityTask().hparams("tiny"), "arch": arch}
    encoder = minilm.build_encoder(TINY_MINILM) if arch == "minilm" else None
    model = compile_similarity_model(build_similarity_model(hparams, 60, encoder), hparams)
    encoders = [layer for layer in model.layers if layer.name.endswith("encoder")]
    assert len(encoders) == 1  # one layer instance, called on both inputs
    _assert_symmetric(model)


def test_minilm_identical_sentences_score_highest():
    hparams = {**SimilarityTask().hparams("tiny"), "arch": "minilm"}
    model = build_similarity_model(hparams, 60, minilm.build_encoder(TINY_MINILM))
    left = _ids(3)
    same = model.predict({"left_ids": left, "right_ids": left}, verbose=0)["score"]
    other = model.predict({"left_ids": left, "right_ids": _ids(4)}, verbose=0)["score"]
    assert np.all(same >= other)


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="unknown similarity arch"):
        build_similarity_model({"arch": "transformer-xl"}, 60)


def test_tiny_run_exports_a_symmetric_signature(tmp_path):
    from training.pipeline import train_task

    settings = RunSettings(
        data_dir=FIXTURES, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    version = train_task(SimilarityTask(), settings, {})
    assets = version / contract.ASSETS_DIR
    spec = load_spec(assets / SPEC_FILE)
    assert [item.field for item in spec.inputs] == ["text_a", "text_b"]
    assert [item.tensor for item in spec.inputs] == ["left_ids", "right_ids"]
    (score,) = spec.heads
    assert isinstance(score, ScoreHead) and score.range == (0.0, 1.0) and score.output == "score"
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert {"pearson", "spearman"} <= set(card["validation_metrics"])
    served = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    left, right = tf.constant(_ids(5) % 20), tf.constant(_ids(6, width=7) % 20)
    forward = served(left_ids=left, right_ids=right)["score"].numpy()
    backward = served(left_ids=right, right_ids=left)["score"].numpy()
    assert forward.shape == (4,)
    np.testing.assert_array_equal(forward, backward)


def test_arch_switch_applies_that_architectures_settings():
    task = SimilarityTask()
    switched = task.effective_hparams({**task.hparams("default"), "arch": "classic"})
    assert switched["learning_rate"] == pytest.approx(1e-3)
    assert switched["extra_data"] == ["sick"]
    assert switched["lr_decay"] is False  # the default's MiniLM schedule is not carried over
    unchanged = task.effective_hparams(task.hparams("default"))
    assert unchanged["learning_rate"] == pytest.approx(1e-4) and unchanged["lr_decay"] is True


def test_predictions_sorted_by_length_come_back_in_input_order():
    hparams = {**SimilarityTask().hparams("tiny"), "arch": "minilm"}
    model = build_similarity_model(hparams, 60, minilm.build_encoder(TINY_MINILM))
    left, right = _ids(7, rows=5), _ids(8, rows=5)
    left[2, 2:] = contract.PAD_ID  # rows of different lengths
    right[4, 3:] = contract.PAD_ID
    inputs = {"left_ids": left, "right_ids": right}
    expected = model.predict(inputs, verbose=0)["score"]
    np.testing.assert_allclose(predict_sorted_by_length(model, inputs), expected, atol=1e-6)


def test_learning_rate_warms_up_then_decays_only_when_asked():
    from training.models.similarity import learning_rate

    assert learning_rate({"learning_rate": 3e-5}, 100) == 3e-5
    assert learning_rate({"learning_rate": 3e-5, "lr_decay": True}, None) == 3e-5
    schedule = learning_rate({"learning_rate": 3e-5, "lr_decay": True}, 100)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(1.5e-5)  # linear warmup, 10 steps
    assert rates[2] == pytest.approx(3e-5) and rates[2] > rates[3] > rates[4]
    assert rates[4] == pytest.approx(0.0, abs=1e-12)
