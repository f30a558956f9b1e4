"""How a task's model is fitted: the standard callbacks and the data arguments of ``fit``.

Early stopping, best checkpoint, LR reduction, CSV log and TensorBoard, plus a task's optional
hooks (``fit_kwargs``, ``fit_target``, ``monitor_callbacks``). Used by
:func:`training.pipeline.train_task` and by ``tune`` (:mod:`training.tuning`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from training.batching import LengthBuckets
from training.logs import logger
from training.tasks.base import PreparedData, RunSettings, Task
from training.tensorboard_logs import tensorboard_callbacks

CSV_LOG_FILE = "training_log.csv"
CHECKPOINT_FILE = "best.weights.h5"
TENSORBOARD_DIR = "tensorboard"


def has_lr_schedule(optimizer: keras.optimizers.Optimizer | None) -> bool:
    """Whether the optimizer's learning rate is a ``LearningRateSchedule`` (not settable)."""
    # The public ``learning_rate`` property returns the schedule's current value, so the
    # schedule itself is only on the private attribute the setter checks as well.
    rate = getattr(optimizer, "_learning_rate", None)
    return isinstance(rate, keras.optimizers.schedules.LearningRateSchedule)


def make_callbacks(
    run_dir: Path,
    monitor: tuple[str, str],
    hparams: Mapping[str, Any],
    optimizer: keras.optimizers.Optimizer | None = None,
) -> list[keras.callbacks.Callback]:
    """Early stopping (best weights restored), best checkpoint, LR reduction, CSV log.

    ``ReduceLROnPlateau`` is left out when ``optimizer``'s learning rate is a schedule (e.g.
    similarity's ``lr_decay``): Keras raises TypeError when that callback sets a scheduled
    learning rate, and the schedule already decides the rate.
    """
    quantity, mode = monitor
    patience = int(hparams.get("patience", 5))
    reduce_lr: list[keras.callbacks.Callback] = []
    if has_lr_schedule(optimizer):
        logger().info("learning rate is a schedule: no ReduceLROnPlateau")
    else:
        reduce_lr.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=quantity,
                mode=mode,
                factor=0.5,
                patience=max(1, patience // 3),
                min_lr=1e-5,
            )
        )
    return [
        keras.callbacks.EarlyStopping(
            monitor=quantity, mode=mode, patience=patience, restore_best_weights=True
        ),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / CHECKPOINT_FILE),
            monitor=quantity,
            mode=mode,
            save_best_only=True,
            save_weights_only=True,
        ),
        *reduce_lr,
        keras.callbacks.CSVLogger(str(run_dir / CSV_LOG_FILE)),
    ]


def fit_data(data: PreparedData, hparams: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The data arguments of ``model.fit``: arrays, or length-bucketed datasets if asked for."""
    batch_size = int(hparams["batch_size"])
    if hparams.get("bucket_by_length"):
        train = LengthBuckets(
            data.train_inputs,
            data.train_targets,
            data.train_weights,
            batch_size,
            shuffle=True,
            seed=seed,
        )
        validation = LengthBuckets(
            data.val_inputs, data.val_targets, data.val_weights, 256, shuffle=False, seed=0
        )
        # The buckets reshuffle themselves every epoch.
        return {
            "x": train.as_dataset(),
            "validation_data": validation.as_dataset(),
            "shuffle": False,
        }
    validation_arrays: tuple[Any, ...] = (data.val_inputs, data.val_targets)
    if data.val_weights is not None:
        validation_arrays = (*validation_arrays, data.val_weights)
    return {
        "x": data.train_inputs,
        "y": data.train_targets,
        "sample_weight": data.train_weights,
        "validation_data": validation_arrays,
        "batch_size": batch_size,
        "shuffle": True,
    }


def monitor_callbacks(
    task: Task, hparams: Mapping[str, Any], data: PreparedData
) -> list[keras.callbacks.Callback]:
    """The task's optional ``monitor_callbacks(hparams, data)``: callbacks that add the
    quantity of ``task.monitor()`` to the epoch logs (e.g. ``val_combined``)."""
    hook = getattr(task, "monitor_callbacks", None)
    return list(hook(hparams, data)) if callable(hook) else []


def fit_target(
    task: Task, model: keras.Model, data: PreparedData, hparams: Mapping[str, Any]
) -> tuple[keras.Model, PreparedData]:
    """What is fitted on which data: the task's optional ``fit_target``, else both as given."""
    target = getattr(task, "fit_target", None)
    return target(model, data, hparams) if callable(target) else (model, data)


def fit_model(
    task: Task,
    model: keras.Model,
    data: PreparedData,
    hparams: Mapping[str, Any],
    settings: RunSettings,
) -> keras.callbacks.History:
    """Fit with validation data and the standard callbacks, one log line per epoch."""
    hook = getattr(task, "fit_kwargs", None)  # optional: task-specific fit options
    extra: dict[str, Any] = dict(hook(hparams)) if callable(hook) else {}
    # Optional: the part of the model to fit and its data (e.g. heads on cached features of
    # a frozen encoder); its layers are the model's own, so the model is what gets trained.
    fitted, fit_on = fit_target(task, model, data, hparams)
    callbacks = make_callbacks(settings.run_dir, task.monitor(), hparams, fitted.optimizer)
    # TensorBoard: scalars, weight/activation histograms, embedding projector.
    log_dir = settings.run_dir / TENSORBOARD_DIR
    callbacks += tensorboard_callbacks(log_dir, fit_on.val_inputs, fit_on.tokenizer_path)
    history: keras.callbacks.History = fitted.fit(
        **fit_data(fit_on, hparams, settings.seed),
        epochs=int(hparams["epochs"]),
        verbose=2,
        **{key: value for key, value in extra.items() if key != "callbacks"},
        # Callbacks that compute the monitored quantity run first; a task's other callbacks
        # run after the standard ones (e.g. after best weights return).
        callbacks=[
            *monitor_callbacks(task, hparams, data),
            *callbacks,
            *extra.get("callbacks", []),
        ],
    )
    return history
