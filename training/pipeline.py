"""Train one task end to end: prepare -> build -> fit (with callbacks) -> evaluate -> export."""

from __future__ import annotations

import json
import logging
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras

from serving.contract import TOKENIZER_FILE
from training.architecture import architecture_assets
from training.batching import LengthBuckets
from training.data.errors import DataError
from training.export import export_for_serving
from training.tasks.base import Arrays, PreparedData, RunSettings, Task
from training.tensorboard_logs import tensorboard_callbacks

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CSV_LOG_FILE = "training_log.csv"
CHECKPOINT_FILE = "best.weights.h5"
TENSORBOARD_DIR = "tensorboard"


def logger() -> logging.Logger:
    """The training logger (configured by the CLI)."""
    return logging.getLogger("training")


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Log the start and the duration of a pipeline stage."""
    started = time.perf_counter()
    logger().info("[%s] start", name)
    yield
    logger().info("[%s] done in %.1f s", name, time.perf_counter() - started)


def resolve_hparams(task: Task, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's hyperparameters with the non-None overrides applied."""
    hparams = task.hparams(preset)
    hparams.update({key: value for key, value in overrides.items() if value is not None})
    return hparams


def split_size(arrays: Arrays | None) -> int:
    """Examples in a split: the smallest first dimension of its arrays (0 if it has none)."""
    if not arrays:
        return 0
    return min((len(array) if array.ndim else 0) for array in arrays.values())


def check_prepared(task_name: str, data: PreparedData) -> None:
    """Refuse data that would train blind, for any task.

    An empty validation split leaves ``val_loss`` undefined: early stopping, checkpoints and the
    LR schedule would silently do nothing and Keras would then fail on its own. An empty
    training split cannot train at all. Raises :class:`DataError` naming the empty split and
    what was read (files, bad lines).
    """
    splits = {
        "training inputs": data.train_inputs,
        "training targets": data.train_targets,
        "validation inputs": data.val_inputs,
        "validation targets": data.val_targets,
    }
    empty = [name for name, arrays in splits.items() if split_size(arrays) == 0]
    if not empty:
        return
    summary = data.data_summary
    read = {key: summary[key] for key in ("files", "bad_lines") if key in summary}
    raise DataError(
        f"{task_name}: no examples in the {' and '.join(empty)} after reading the data "
        f"({json.dumps(read, default=str)}); check the data files (every line bad or missing?) "
        "and --max-examples"
    )


def prepare_data(task: Task, settings: RunSettings, hparams: Mapping[str, Any]) -> PreparedData:
    """``task.prepare`` followed by :func:`check_prepared` (raises DataError)."""
    data = task.prepare(settings, hparams)
    check_prepared(task.name, data)
    return data


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


def git_commit() -> str:
    """The project's current git commit, or "unknown" outside a work tree."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip()


def model_card(
    task: Task,
    settings: RunSettings,
    hparams: Mapping[str, Any],
    data: PreparedData,
    metrics: Mapping[str, Any],
    training_seconds: float,
    epochs_run: int,
) -> dict[str, Any]:
    """What the model is, what it was trained on and how well it does on validation."""
    return {
        "task": task.name,
        "architecture": hparams.get("arch", "default"),
        "hparams": dict(hparams),
        "data": data.data_summary,
        "validation_metrics": dict(metrics),
        "training_seconds": round(training_seconds, 1),
        "epochs_run": epochs_run,
        "git_commit": git_commit(),
        "preset": settings.preset,
        "seed": settings.seed,
        "run_dir": str(settings.run_dir),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def train_task(task: Task, settings: RunSettings, overrides: Mapping[str, Any]) -> Path:
    """Train, evaluate and export one task; return the exported version's folder."""
    keras.utils.set_random_seed(settings.seed)
    hparams = resolve_hparams(task, settings.preset, overrides)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    logger().info(
        "training %s, preset %s, run dir %s", task.name, settings.preset, settings.run_dir
    )
    logger().info("hparams %s", json.dumps(hparams, sort_keys=True))
    with stage("prepare data"):
        data = prepare_data(task, settings, hparams)
    logger().info("data %s", json.dumps(data.data_summary, sort_keys=True, default=str))
    with stage("build model"):
        model = task.build_model(hparams, data)
    # summary.txt and model.png in the run folder; the export's extra_assets.
    architecture = architecture_assets(model, settings.run_dir)
    logger().info("architecture: %s", ", ".join(sorted(architecture)))
    started = time.perf_counter()
    with stage("fit"):
        history = fit_model(task, model, data, hparams, settings)
    training_seconds = time.perf_counter() - started
    with stage("evaluate"):
        metrics = task.evaluate(model, data)
    logger().info("validation metrics %s", json.dumps(metrics, sort_keys=True))
    card = model_card(task, settings, hparams, data, metrics, training_seconds, len(history.epoch))
    (settings.run_dir / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    with stage("export"):
        path = export_for_serving(
            model,
            data.spec,
            {TOKENIZER_FILE: data.tokenizer_path},
            name=task.name,
            repo=settings.model_repo,
            model_card=card,
            extra_assets=architecture,  # summary.txt, model.png: served by the gateway
        )
    logger().info("exported %s", path)
    return path
