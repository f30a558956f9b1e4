"""The combined validation monitor (val_combined), the 3-band age metric and band-aware loss."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest

from training.data.blogs import read_blogs
from training.fitting import CSV_LOG_FILE, fit_model
from training.models.profile_heads import AgeBandAccuracy, BandAwareHuber, age_bands
from training.monitoring import CombinedMonitor, MonitorTerm, combined_value
from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask
from training.tasks.profile_targets import monitor_terms

FIXTURE_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "blogs"
TERMS = [
    MonitorTerm("gender_prob_accuracy", 1.0, baseline=0.5, higher_is_better=True),
    MonitorTerm("age_mae", 0.5, baseline=6.0),
]


def test_combined_value_is_the_weighted_mean_of_errors_relative_to_the_baseline():
    logs = {"val_gender_prob_accuracy": 0.8, "val_age_mae": 3.0}
    # gender: (1 - 0.8) / (1 - 0.5) = 0.4; age: 3 / 6 = 0.5; (1 * 0.4 + 0.5 * 0.5) / 1.5
    assert combined_value(logs, TERMS, "val_") == pytest.approx(0.65 / 1.5)
    constant = {"val_gender_prob_accuracy": 0.5, "val_age_mae": 6.0}
    assert combined_value(constant, TERMS, "val_") == pytest.approx(1.0)


def test_combined_value_trades_heads_by_their_weights():
    # Gender +2 points (error 0.2 -> 0.18: -0.04 normalised, weight 1) against age MAE
    # +0.6 years (+0.1 normalised, weight 0.5): the combined monitor prefers the first epoch.
    first = {"val_gender_prob_accuracy": 0.80, "val_age_mae": 3.0}
    second = {"val_gender_prob_accuracy": 0.82, "val_age_mae": 3.6}
    assert combined_value(first, TERMS, "val_") < combined_value(second, TERMS, "val_")


def test_combined_value_names_a_missing_log_and_rejects_no_weight():
    with pytest.raises(KeyError, match="val_age_mae"):
        combined_value({"val_gender_prob_accuracy": 0.8}, TERMS, "val_")
    with pytest.raises(ValueError, match="positive weight"):
        CombinedMonitor([MonitorTerm("age_mae", 0.0, baseline=6.0)])


def test_monitor_terms_take_constant_predictor_baselines_from_training_targets():
    targets = {
        "gender_prob": np.array([[1], [1], [1], [0]], np.float32),
        "age": np.array([[15], [16], [25], [40]], np.float32),
    }
    weights = {"gender_prob_accuracy": 1.0, "age_mae": 0.5, "age_band_accuracy": 0.0}
    terms = {term.log: term for term in monitor_terms(weights, targets)}
    assert set(terms) == {"gender_prob_accuracy", "age_mae"}  # weight 0 leaves a term out
    assert terms["gender_prob_accuracy"].baseline == pytest.approx(0.75)
    assert terms["age_mae"].baseline == pytest.approx((5.5 + 4.5 + 4.5 + 19.5) / 4)  # median 20.5
    with pytest.raises(ValueError, match="unknown monitor_weights"):
        monitor_terms({"income_accuracy": 1.0}, targets)


def test_age_bands_match_the_corpus_bands_and_the_keras_metric():
    ages = np.array([13.0, 19.9, 20.0, 29.9, 30.0, 48.0])
    np.testing.assert_array_equal(age_bands(ages), [0, 0, 1, 1, 2, 2])
    names = ("teen", "twenties", "thirties+")
    for blogger in read_blogs(FIXTURE_DIR).bloggers:
        assert names[int(age_bands([blogger.age])[0])] == blogger.age_band
    metric = AgeBandAccuracy()
    metric.update_state(
        np.array([[15.0], [25.0], [35.0], [19.0]]), np.array([[19.9], [20.0], [29.9], [12.0]])
    )
    assert float(metric.result()) == pytest.approx(0.75)  # only 35 -> 29.9 changes band


def test_profile_fit_logs_val_combined_before_the_callbacks_that_watch_it(tmp_path):
    task = ProfileTask()
    hparams = {**task.hparams("tiny"), "epochs": 2}
    settings = RunSettings(
        data_dir=FIXTURE_DIR, model_repo=tmp_path / "repo", run_dir=tmp_path / "run", preset="tiny"
    )
    keras.utils.set_random_seed(1)
    data = task.prepare(settings, hparams)
    model = task.build_model(hparams, data)
    history = fit_model(task, model, data, hparams, settings)
    terms = monitor_terms(hparams["monitor_weights"], data.train_targets)
    for epoch, value in enumerate(history.history["val_combined"]):
        logs = {key: values[epoch] for key, values in history.history.items()}
        assert value == pytest.approx(combined_value(logs, terms, "val_"))
    with (settings.run_dir / CSV_LOG_FILE).open() as stream:
        assert "val_combined" in next(csv.reader(stream))
    # ModelCheckpoint only writes when it finds its monitored quantity in the logs.
    assert (settings.run_dir / "best.weights.h5").exists()


def test_band_aware_huber_prefers_the_true_band_side_of_an_edge():
    plain = BandAwareHuber(delta=2.0)
    banded = BandAwareHuber(delta=2.0, band_weight=1.0, reduction=None)
    true = np.array([[17.0], [17.0]], np.float32)
    predicted = np.array([[18.5], [21.5]], np.float32)  # 1.5 below / above the edge at 20
    np.testing.assert_allclose(
        float(plain(true, predicted)), float(keras.losses.Huber(2.0)(true, predicted)), rtol=1e-6
    )
    per_row = keras.ops.convert_to_numpy(banded(true, predicted))
    huber = keras.ops.convert_to_numpy(keras.losses.huber(true, predicted, delta=2.0))
    extra = per_row - huber
    assert np.all(extra > 0)
    assert extra[1] > 4 * extra[0]  # the wrong side of the edge costs far more
