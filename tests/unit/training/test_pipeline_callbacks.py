"""The pipeline's standard callbacks with a constant and with a scheduled learning rate."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from training.fitting import has_lr_schedule, make_callbacks

MONITOR = ("val_plateau", "min")


class Plateau(keras.callbacks.Callback):  # type: ignore[misc]
    """Puts a monitored quantity that never improves into the epoch logs."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs[MONITOR[0]] = 1.0


def fit_on_plateau(optimizer: keras.optimizers.Optimizer, run_dir: Path) -> None:
    """Fit a one-unit model for 3 epochs on a monitor that never improves after the first."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=optimizer, loss="mse")
    x = np.ones((8, 2), np.float32)
    y = np.zeros((8, 1), np.float32)
    callbacks = make_callbacks(run_dir, MONITOR, {"patience": 3}, model.optimizer)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Plateau(), *callbacks])


def test_a_scheduled_learning_rate_trains_through_a_plateau(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Keras raises TypeError when ReduceLROnPlateau sets a scheduled rate (similarity's
    # lr_decay presets hit it once the monitor stalled for patience // 3 epochs).
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=10)
    with caplog.at_level(logging.INFO, logger="training"):
        fit_on_plateau(keras.optimizers.Adam(schedule), tmp_path)
    assert "no ReduceLROnPlateau" in caplog.text


def test_a_constant_learning_rate_is_halved_on_a_plateau(tmp_path: Path) -> None:
    optimizer = keras.optimizers.Adam(1e-2)
    fit_on_plateau(optimizer, tmp_path)
    assert float(optimizer.learning_rate) == pytest.approx(2.5e-3)


def test_has_lr_schedule() -> None:
    schedule = keras.optimizers.schedules.CosineDecay(1e-2, decay_steps=10)
    assert has_lr_schedule(keras.optimizers.Adam(schedule))
    assert not has_lr_schedule(keras.optimizers.Adam(1e-2))
    assert not has_lr_schedule(None)
