"""Bounded hyperparameter search with keras-tuner; every trial is recorded in the run dir."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner

from training.pipeline import fit_data, logger, monitor_callbacks, resolve_hparams, stage
from training.tasks.base import PreparedData, RunSettings, Task

TRIALS_JSON = "trials.json"
TRIALS_CSV = "trials.csv"


def make_tuner(
    task: Task,
    data: PreparedData,
    hparams: Mapping[str, Any],
    settings: RunSettings,
    trials: int,
    algorithm: str,
) -> keras_tuner.Tuner:
    """A RandomSearch or BayesianOptimization tuner over ``task.search_space``."""

    def build(hp: keras_tuner.HyperParameters) -> keras.Model:
        return task.build_model({**hparams, **task.search_space(hp)}, data)

    quantity, mode = task.monitor()
    options: dict[str, Any] = {
        "objective": keras_tuner.Objective(quantity, direction=mode),
        "max_trials": trials,
        "seed": settings.seed,
        "directory": str(settings.run_dir),
        "project_name": "tuner",
        "overwrite": True,
    }
    if algorithm == "bayesian":
        return keras_tuner.BayesianOptimization(build, **options)
    return keras_tuner.RandomSearch(build, **options)


def record_trials(tuner: keras_tuner.Tuner, run_dir: Path) -> list[dict[str, Any]]:
    """Write every trial (id, status, score, hyperparameters) as JSON and CSV."""
    rows = [
        {
            "trial_id": trial.trial_id,
            "status": str(trial.status),
            "score": trial.score,
            **trial.hyperparameters.values,
        }
        for trial in tuner.oracle.trials.values()
    ]
    (run_dir / TRIALS_JSON).write_text(json.dumps(rows, indent=2, default=str))
    columns = sorted({key for row in rows for key in row})
    with (run_dir / TRIALS_CSV).open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def tune_task(
    task: Task,
    settings: RunSettings,
    overrides: Mapping[str, Any],
    trials: int,
    algorithm: str = "random",
) -> dict[str, Any]:
    """Search ``trials`` hyperparameter sets (small epochs); return the best set found."""
    keras.utils.set_random_seed(settings.seed)
    hparams = resolve_hparams(task, settings.preset, overrides)
    # Trials are short: a tuning run compares settings, the final run trains to convergence.
    hparams["epochs"] = int(overrides.get("epochs") or hparams.get("tune_epochs", 5))
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with stage("prepare data"):
        data = task.prepare(settings, hparams)
    tuner = make_tuner(task, data, hparams, settings, trials, algorithm)
    quantity, mode = task.monitor()
    with stage(f"search {trials} trials"):
        tuner.search(
            **fit_data(data, hparams, settings.seed),
            epochs=hparams["epochs"],
            callbacks=[
                *monitor_callbacks(task, hparams, data),
                keras.callbacks.EarlyStopping(quantity, mode=mode, patience=2),
            ],
            verbose=2,
        )
    rows = record_trials(tuner, settings.run_dir)
    logger().info("recorded %d trials in %s", len(rows), settings.run_dir / TRIALS_CSV)
    best: dict[str, Any] = dict(tuner.get_best_hyperparameters(1)[0].values)
    return best
