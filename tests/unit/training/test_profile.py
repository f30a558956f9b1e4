"""The profile task: targets and the masked income loss, tiny models, one tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from serving.tokenization import encode_texts, load_tokenizer
from training.data.blogs import load_income_groups, read_blogs
from training.models.profile import build_profile_model, compile_profile_model
from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask, blogger_text, profile_targets

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"


def _tiny_hparams(arch="bag"):
    return {**ProfileTask().hparams("tiny"), "arch": arch}


def test_targets_mask_income_of_bloggers_without_industry():
    bloggers = read_blogs(FIXTURE_DIR).bloggers
    targets, weights = profile_targets(bloggers, load_income_groups())
    for blogger, weight in zip(bloggers, weights["income_probs"], strict=True):
        if blogger.industry in {"Student", "indUnk"} and blogger.income_group is None:
            assert weight == 0.0
        else:
            assert weight == 1.0
    overridden = [b.income_group for b in bloggers].index(2)
    assert targets["income_probs"][overridden] == 2  # Engineering would be 8
    assert targets["age"].shape == (12, 1) and targets["gender_prob"].shape == (12, 1)
    assert set(targets["gender_prob"].reshape(-1)) == {0.0, 1.0}
    assert np.all(weights["age"] == 1.0) and np.all(weights["gender_prob"] == 1.0)


@pytest.mark.parametrize("arch", ["tfidf", "bag", "classic"])
def test_tiny_model_predicts_the_three_heads(arch):
    model = compile_profile_model(
        build_profile_model(_tiny_hparams(arch), 50, 25.0), _tiny_hparams()
    )
    ids = np.random.default_rng(0).integers(1, 50, size=(3, 40)).astype(np.int32)
    ids[0, 20:] = contract.PAD_ID
    outputs = model.predict({"post_ids": ids}, verbose=0)
    assert outputs["age"].shape == (3, 1)
    assert outputs["income_probs"].shape == (3, contract.INCOME_GROUPS)
    np.testing.assert_allclose(outputs["income_probs"].sum(axis=1), 1.0, rtol=1e-5)
    assert outputs["gender_prob"].shape == (3, 1)
    assert np.all((outputs["gender_prob"] >= 0) & (outputs["gender_prob"] <= 1))
    np.testing.assert_allclose(outputs["age"], 25.0, atol=5.0)  # the bias starts at the mean


def _one_training_step(income_labels, weights):
    keras.utils.set_random_seed(3)
    model = compile_profile_model(build_profile_model(_tiny_hparams(), 30, 25.0), _tiny_hparams())
    ids = np.random.default_rng(1).integers(1, 30, size=(6, 12)).astype(np.int32)
    targets = {
        "age": np.full((6, 1), 30.0, np.float32),
        "income_probs": income_labels,
        "gender_prob": np.array([[0], [1], [0], [1], [0], [1]], np.float32),
    }
    losses = model.evaluate(
        {"post_ids": ids}, targets, sample_weight=weights, return_dict=True, verbose=0
    )
    model.train_on_batch({"post_ids": ids}, targets, sample_weight=weights)
    return losses["income_probs_loss"], [w.numpy().copy() for w in model.trainable_weights]


def test_masked_income_rows_do_not_change_the_income_loss_or_the_update():
    ones = np.ones(6, np.float32)
    weights = {
        "age": ones,
        "income_probs": np.array([1, 1, 0, 0, 1, 0], np.float32),
        "gender_prob": ones,
    }
    labels = np.array([3, 7, 0, 0, 9, 0], np.int32)
    other = labels.copy()
    other[[2, 3, 5]] = [5, 9, 1]  # change only the masked rows' labels
    loss, after = _one_training_step(labels, weights)
    other_loss, other_after = _one_training_step(other, weights)
    assert loss == pytest.approx(other_loss, abs=1e-7)
    for first, second in zip(after, other_after, strict=True):
        np.testing.assert_array_equal(first, second)
    unmasked_loss, _ = _one_training_step(other, {**weights, "income_probs": ones})
    assert unmasked_loss != pytest.approx(loss, abs=1e-4)  # the labels would matter unmasked


def test_tiny_run_exports_the_contract(tmp_path):
    from training.pipeline import train_task

    settings = RunSettings(
        data_dir=FIXTURE_DIR, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    version = train_task(ProfileTask(), settings, {})
    assets = version / contract.ASSETS_DIR
    labels = json.loads((assets / contract.LABELS_FILE).read_text())
    assert labels == load_income_groups().labels()
    preprocessing = json.loads((assets / contract.PREPROCESSING_FILE).read_text())
    assert preprocessing["post_separator"] == "[SEP]"
    card = json.loads((assets / contract.MODEL_CARD_FILE).read_text())
    assert card["data"]["income_is_proxy"] is True and card["data"]["bad_lines"] == 3
    assert {"gender_accuracy", "age_mae", "income_accuracy_labelled"} <= set(
        card["validation_metrics"]
    )
    # The exported tokenizer turns the posts into the ids the model was trained on.
    bloggers = read_blogs(FIXTURE_DIR).bloggers
    tokenizer = load_tokenizer(assets / contract.TOKENIZER_FILE)
    exported = encode_texts(tokenizer, [blogger_text(b) for b in bloggers[:2]], 128)
    trained = encode_texts(
        load_tokenizer(settings.run_dir / contract.TOKENIZER_FILE),
        [blogger_text(b) for b in bloggers[:2]],
        128,
    )
    np.testing.assert_array_equal(exported, trained)
    served = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    outputs = served(post_ids=tf.constant(exported))
    assert outputs["age"].shape == (2,) and outputs["gender_prob"].shape == (2,)
    assert outputs["income_probs"].shape == (2, contract.INCOME_GROUPS)
