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
from training.data.sts import SentencePair
from training.models.similarity import (
    COSINE_OUTPUT,
    CoSENT,
    build_similarity_model,
    compile_similarity_model,
    cosent,
)
from training.saved_model import write_saved_model
from training.tasks.base import RunSettings
from training.tasks.similarity import (
    SimilarityTask,
    predict_sorted_by_length,
    score_targets,
    similarity_spec,
)

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
    _assert_served_contract(train_task(SimilarityTask(), settings, {}))


def test_default_run_on_pretrained_minilm_exports_the_same_contract(tmp_path):
    """The default preset's training options (top blocks, score-head learning rate, ...)
    leave the served signature as it was: two id matrices in, a symmetric score in [0, 1]."""
    from training.pipeline import train_task

    settings = RunSettings(
        data_dir=FIXTURES, model_repo=tmp_path / "repo", run_dir=tmp_path / "run"
    )
    _assert_served_contract(train_task(SimilarityTask(), settings, {}))


def _assert_served_contract(version: Path) -> None:
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


def test_cosent_has_its_closed_form_on_two_pairs():
    # One ordered pair (gold 1 > 0) predicted reversed by 0.3: log(1 + exp(20 * 0.3)).
    loss = cosent(np.array([1.0, 0.0]), np.array([0.2, 0.5], np.float32), scale=20.0)
    assert float(loss) == pytest.approx(np.log1p(np.exp(6.0)), rel=1e-5)
    # Gold ties are no pair at all: log(1 + 0).
    assert float(cosent(np.array([[0.4], [0.4]]), np.array([[0.9], [0.1]], np.float32))) == 0.0


def test_cosent_scores_only_the_order_of_the_predictions():
    gold = np.array([0.9, 0.1, 0.5, 0.3], np.float32)
    in_order = np.array([0.8, 0.2, 0.6, 0.4], np.float32)
    reversed_order = 1.0 - in_order
    shifted = in_order - 0.15
    assert float(cosent(gold, in_order)) < float(cosent(gold, reversed_order))
    assert float(cosent(gold, shifted)) == pytest.approx(float(cosent(gold, in_order)), rel=1e-5)
    # One swapped pair (0.5 vs 0.3 predicted 0.4 vs 0.6) costs more than none swapped.
    one_swap = np.array([0.8, 0.2, 0.4, 0.6], np.float32)
    assert float(cosent(gold, in_order)) < float(cosent(gold, one_swap))


def test_cosent_trains_a_cosine_output_that_the_served_signature_leaves_out(tmp_path):
    hparams = {**SimilarityTask().hparams("default"), "cosent_weight": 0.5}
    model = build_similarity_model(hparams, 60, minilm.build_encoder(TINY_MINILM))
    compile_similarity_model(model, hparams, train_steps=10)
    assert sorted(model.output_names) == [COSINE_OUTPUT, "score"]
    assert isinstance(model.loss[COSINE_OUTPUT], CoSENT) and model.loss["score"] == "mse"
    inputs = {"left_ids": _ids(3), "right_ids": _ids(4)}
    outputs = model.predict(inputs, verbose=0)
    # The score is a monotone map of the cosine, so both rank the pairs alike.
    np.testing.assert_array_equal(
        np.argsort(outputs[COSINE_OUTPUT].ravel()), np.argsort(outputs["score"].ravel())
    )
    # Targets for both outputs, and the MSE + 0.5 x CoSENT loss on one batch.
    pairs = [SentencePair("a", "b", score, "sts") for score in (0.9, 0.1, 0.5, 0.3)]
    targets = score_targets(pairs, hparams)
    assert sorted(targets) == [COSINE_OUTPUT, "score"]
    logs = model.evaluate(inputs, targets, batch_size=4, verbose=0, return_dict=True)
    expected = float(np.mean((targets["score"] - outputs["score"]) ** 2)) + 0.5 * float(
        cosent(targets[COSINE_OUTPUT], outputs[COSINE_OUTPUT])
    )
    assert logs["loss"] == pytest.approx(expected, rel=1e-4)
    path = tmp_path / "saved"
    write_saved_model(model, similarity_spec(16, 60), path)
    served = tf.saved_model.load(str(path)).signatures["serving_default"]
    assert list(served.structured_outputs) == ["score"]


def test_without_cosent_the_model_has_the_score_only():
    hparams = {**SimilarityTask().hparams("default"), "cosent_weight": 0.0}
    model = build_similarity_model(hparams, 60, minilm.build_encoder(TINY_MINILM))
    compile_similarity_model(model, hparams)
    assert model.output_names == ["score"]


def test_cosent_gradient_pushes_a_reversed_pair_apart_in_gold_order():
    predicted = tf.Variable([0.2, 0.5])
    with tf.GradientTape() as tape:
        loss = cosent(tf.constant([1.0, 0.0]), predicted)
    gradient = tape.gradient(loss, predicted).numpy()
    assert np.all(np.isfinite(gradient))
    assert gradient[0] < 0 < gradient[1]  # raise the gold-higher pair, lower the other
