"""The profile age NB towers: one log-count ratio per band edge, the heads they feed, export."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import contract
from tests.support.profile_task import CapturingProfileTask
from training.models.profile import build_profile_model, set_tfidf_weights
from training.models.profile_heads import AGE_BAND_EDGES
from training.models.profile_nb import age_nb_layer, document_frequency, log_count_ratio
from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"
TOWERS = {age_nb_layer(edge) for edge in AGE_BAND_EDGES}


def _hparams(**changes):
    return {**ProfileTask().hparams("tiny"), "arch": "tfidf", "age_nb_units": 3, **changes}


def test_each_edge_has_the_ratio_of_the_bloggers_above_it_against_those_below():
    model = build_profile_model(_hparams(bigram_buckets=0), 20, 25.0)
    ids = np.array([[1, 2, 2, 0], [1, 3, 0, 0], [4, 4, 5, 0], [4, 3, 6, 0]], np.int32)
    ages = np.array([[15.0], [25.0], [35.0], [40.0]], np.float32)
    set_tfidf_weights(model, ids, np.array([1, 0, 1, 0], np.float32), 0.5, ages)
    for edge, above in ((20.0, [1, 2, 3]), (30.0, [2, 3])):
        below = [row for row in range(4) if row not in above]
        expected = log_count_ratio(
            document_frequency(ids[above], 20), document_frequency(ids[below], 20), 0.5
        )
        ratio = model.get_layer(age_nb_layer(edge)).ratio.numpy()
        np.testing.assert_allclose(ratio, expected, rtol=1e-6)
    # Word 2 is only in the teenager's text, word 4 only in the two over 30.
    young = model.get_layer(age_nb_layer(20.0)).ratio.numpy()
    old = model.get_layer(age_nb_layer(30.0)).ratio.numpy()
    assert young[2] < 0 < young[4] and old[4] > 0 > old[1]
    with pytest.raises(ValueError, match="training ages"):
        set_tfidf_weights(model, ids, np.array([1, 0, 1, 0], np.float32), 0.5)


def test_without_units_the_heads_are_the_plain_dense_layers():
    model = build_profile_model(_hparams(age_nb_units=0), 20, 25.0)
    names = {layer.name for layer in model.layers}
    assert not names & TOWERS and not any(name.endswith("_from_nb") for name in names)
    assert isinstance(model.get_layer("age"), keras.layers.Dense)
    assert isinstance(model.get_layer("age_band_probs"), keras.layers.Dense)


@pytest.mark.parametrize("arch", ["bag", "classic"])
def test_other_archs_build_without_the_towers(arch):
    model = build_profile_model(_hparams(arch=arch), 20, 25.0)
    assert not {layer.name for layer in model.layers} & TOWERS


def test_the_towers_feed_age_and_band_and_start_at_zero():
    model = build_profile_model(_hparams(dropout=0.0), 20, 25.0)
    assert {layer.name for layer in model.layers} >= TOWERS
    for head in ("age", "age_band_probs"):
        from_nb = model.get_layer(f"{head}_from_nb")
        assert not np.any(from_nb.kernel.numpy())  # the model starts as the plain one
        assert from_nb.input.shape[-1] == 2 * 3  # both towers' units
    ids = np.array([[1, 2, 3, 0], [4, 5, 0, 0]], np.int32)
    outputs = model({"post_ids": ids})
    assert outputs["age"].shape == (2, 1)
    np.testing.assert_allclose(outputs["age_band_probs"].numpy().sum(axis=-1), 1.0, rtol=1e-6)


def test_tiny_run_with_the_towers_exports_the_same_age_and_band(tmp_path):
    from training.pipeline import train_task

    keras.utils.set_random_seed(1)
    settings = RunSettings(
        data_dir=FIXTURE_DIR, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    task = CapturingProfileTask()
    version = train_task(task, settings, {"age_nb_units": 4})
    ratio = task.model.get_layer(age_nb_layer(30.0)).ratio.numpy()
    assert np.any(ratio != 0)  # set from the training ids and ages
    ids = task.data.val_inputs["post_ids"]
    expected = task.model.predict({"post_ids": ids}, verbose=0)
    served = tf.saved_model.load(str(version)).signatures[contract.SIGNATURE_NAME]
    outputs = served(post_ids=tf.constant(ids))
    np.testing.assert_allclose(
        outputs["age"].numpy(), expected["age"].reshape(-1), rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(
        outputs["age_band_probs"].numpy(), expected["age_band_probs"], rtol=1e-5, atol=1e-6
    )
