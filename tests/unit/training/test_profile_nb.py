"""The profile gender head's NB-SVM term: the log-count ratio, its layer, options, export."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from tests.support.profile_task import CapturingProfileTask
from training.models.profile import NB_LAYER, build_profile_model, set_tfidf_weights
from training.models.profile_nb import NbDense, document_frequency, log_count_ratio
from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"


def _hparams(**changes):
    return {**ProfileTask().hparams("tiny"), "gender_nb": "linear", **changes}


def test_log_count_ratio_on_a_tiny_example():
    # p = 1 + [2, 0, 1] = [3, 1, 2] (sum 6); q = 1 + [0, 2, 1] = [1, 3, 2] (sum 6).
    ratio = log_count_ratio(np.array([2, 0, 1]), np.array([0, 2, 1]), alpha=1.0)
    np.testing.assert_allclose(ratio, [math.log(3), -math.log(3), 0.0], atol=1e-6)
    # Unequal class sizes: each class's counts are normalised by its own total first.
    ratio = log_count_ratio(np.array([3, 1]), np.array([1, 1]), alpha=1.0)
    np.testing.assert_allclose(ratio, np.log(np.array([4, 2]) / 6 / (np.array([2, 2]) / 4)))
    assert ratio.dtype == np.float32


def test_log_count_ratio_refuses_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        log_count_ratio(np.zeros(3), np.zeros(3), alpha=0.0)
    with pytest.raises(ValueError, match="shape"):
        log_count_ratio(np.zeros(3), np.zeros(4), alpha=1.0)


def test_nb_dense_is_a_dense_layer_over_the_scaled_features():
    features = np.array([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]], np.float32)
    layer = NbDense(2)
    np.testing.assert_array_equal(layer(features), np.zeros((2, 2)))  # ratio zeros until set
    ratio = np.array([2.0, -1.0, 0.5], np.float32)
    layer.set_ratio(ratio)
    kernel = np.array([[1.0, 0.5], [2.0, -1.0], [-3.0, 0.25]], np.float32)
    layer.kernel.assign(kernel)
    layer.bias.assign(np.array([0.1, -0.2], np.float32))
    # features * r = [[2, -2, 1.5], [1, 0, -0.5]]; times the kernel, plus the bias.
    expected = (features * ratio) @ kernel + [0.1, -0.2]
    np.testing.assert_allclose(expected, [[-6.4, 3.175], [2.6, 0.175]], rtol=1e-6)
    np.testing.assert_allclose(layer(features), expected, rtol=1e-6)
    assert [w.name for w in layer.non_trainable_weights] == ["ratio"]
    with pytest.raises(ValueError, match="shape"):
        layer.set_ratio(np.ones(4))
    copy = NbDense.from_config(layer.get_config())
    assert copy.units == 2


def test_ratio_comes_from_each_class_document_frequencies():
    model = build_profile_model(_hparams(), 20, 25.0)
    ids = np.array([[1, 2, 2, 0], [1, 3, 0, 0], [4, 4, 5, 0], [4, 3, 0, 0]], np.int32)
    gender = np.array([[1], [1], [0], [0]], np.float32)
    set_tfidf_weights(model, ids, gender, nb_alpha=0.5)
    ratio = model.get_layer(NB_LAYER).ratio.numpy()
    word = log_count_ratio(
        document_frequency(ids[:2], 20), document_frequency(ids[2:], 20), alpha=0.5
    )
    np.testing.assert_allclose(ratio[:20], word, rtol=1e-6)
    assert ratio[2] > 0 > ratio[4] and ratio[3] == pytest.approx(0.0, abs=1e-6)
    assert ratio.shape == (20 + ProfileTask().hparams("tiny")["bigram_buckets"] + 1,)
    with pytest.raises(ValueError, match="gender targets"):
        set_tfidf_weights(model, ids)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gender_nb": "svm"}, "unknown gender_nb"),
        ({"gender_nb": "tower", "gender_nb_units": 0}, "gender_nb_units"),
    ],
)
def test_bad_gender_nb_options_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        build_profile_model(_hparams(**changes), 20, 25.0)


@pytest.mark.parametrize(
    ("kind", "layers"),
    [("none", set()), ("linear", {NB_LAYER}), ("tower", {NB_LAYER, "gender_nb_logit"})],
)
def test_each_kind_builds_its_layers(kind, layers):
    model = build_profile_model(_hparams(gender_nb=kind, gender_nb_units=4), 20, 25.0)
    names = {layer.name for layer in model.layers}
    assert names & {NB_LAYER, "gender_nb_logit"} == layers


def test_own_dropout_gives_the_nb_term_its_own_mask():
    shared = build_profile_model(_hparams(), 20, 25.0)
    own = build_profile_model(_hparams(gender_nb_own_dropout=True), 20, 25.0)
    assert "gender_nb_dropout" not in {layer.name for layer in shared.layers}
    assert own.get_layer(NB_LAYER).input is own.get_layer("gender_nb_dropout").output
    assert shared.get_layer(NB_LAYER).input is shared.get_layer("hidden").input


@pytest.mark.parametrize("arch", ["bag", "classic"])
def test_other_archs_build_without_the_nb_term(arch):
    # The default preset asks for the tower; `--arch bag/classic` must still build.
    hparams = {**ProfileTask().hparams("default"), "arch": arch, "vocab_size": 20}
    assert hparams["gender_nb"] == "tower"
    model = build_profile_model(hparams, 20, 25.0)
    assert not {NB_LAYER, "gender_nb_logit"} & {layer.name for layer in model.layers}


def test_tiny_run_with_the_nb_term_exports_the_same_gender_probabilities(tmp_path):
    from training.pipeline import train_task

    keras.utils.set_random_seed(1)
    settings = RunSettings(
        data_dir=FIXTURE_DIR, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    task = CapturingProfileTask()
    version = train_task(task, settings, {"gender_nb": "tower", "gender_nb_units": 4})
    ratio = task.model.get_layer(NB_LAYER).ratio.numpy()
    assert np.any(ratio != 0)  # set from the training ids, not the zeros it starts with
    ids = task.data.val_inputs["post_ids"]
    expected = task.model.predict({"post_ids": ids}, verbose=0)["gender_prob"].reshape(-1)
    loaded = tf.saved_model.load(str(version))
    saved = [v.numpy() for v in loaded.variables if tuple(v.shape) == ratio.shape]
    assert any(np.array_equal(value, ratio) for value in saved)  # the ratio ships with it
    outputs = loaded.signatures[contract.SIGNATURE_NAME](post_ids=tf.constant(ids))
    np.testing.assert_allclose(outputs["gender_prob"].numpy(), expected, rtol=1e-5, atol=1e-6)
