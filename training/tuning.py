"""Bounded hyperparameter search with keras-tuner; every trial is recorded in the run dir.

The trials also go to TensorBoard's HParams dashboard (``tensorboard/`` of the tune run):
one session per trial with its hyperparameters and its objective (the best epoch's value of
the task's monitored quantity, as keras-tuner scores it). The search can be spread over
several processes or machines (``training/tuning_distribution.py``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from training.fitting import TENSORBOARD_DIR, fit_data, fit_target, monitor_callbacks
from training.logs import logger
from training.pipeline import prepare_data, resolve_hparams, stage
from training.tasks.base import PreparedData, RunSettings, Task
from training.tuning_distribution import Distribution, distributed

TRIALS_JSON = "trials.json"
TRIALS_CSV = "trials.csv"


class TaskHyperModel(keras_tuner.HyperModel):  # type: ignore[misc]
    """A task's model per trial, fitted the way ``train`` fits it.

    Each trial's hyperparameters (the preset's, then the sampled ones) build the model and
    choose what is fitted on which data: the task's optional ``fit_target`` (e.g. qa keeps
    the per-hop targets of the trial's own ``hops``; nli fits its heads on cached vectors).
    The data is prepared once per search, before any trial is sampled.
    """

    def __init__(
        self, task: Task, data: PreparedData, hparams: Mapping[str, Any], seed: int
    ) -> None:
        super().__init__()
        self.task, self.data, self.hparams, self.seed = task, data, dict(hparams), seed

    def trial_hparams(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """The preset's hyperparameters with the trial's sampled ones on top."""
        return {**self.hparams, **self.task.search_space(hp)}

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """The compiled model of this trial."""
        return self.task.build_model(self.trial_hparams(hp), self.data)

    def fit(
        self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any
    ) -> Any:
        """Fit on the trial's own data; the search's data arguments are replaced."""
        trial = self.trial_hparams(hp)
        fitted, fit_on = fit_target(self.task, model, self.data, trial)
        data_keys = {"x", "y", "sample_weight", "validation_data", "batch_size", "shuffle"}
        options = {key: value for key, value in kwargs.items() if key not in data_keys}
        return fitted.fit(**fit_data(fit_on, trial, self.seed), **options)


def make_tuner(
    task: Task,
    data: PreparedData,
    hparams: Mapping[str, Any],
    settings: RunSettings,
    trials: int,
    algorithm: str,
) -> keras_tuner.Tuner:
    """A RandomSearch or BayesianOptimization tuner over ``task.search_space``."""
    hypermodel = TaskHyperModel(task, data, hparams, settings.seed)
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
        return keras_tuner.BayesianOptimization(hypermodel, **options)
    return keras_tuner.RandomSearch(hypermodel, **options)


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


def hparam_domain(hyperparameter: Any) -> Any:
    """The HParams dashboard's domain of a keras-tuner hyperparameter, or None if unknown."""
    types = keras_tuner.engine.hyperparameters
    if isinstance(hyperparameter, types.Choice):
        return hparams_api.Discrete(list(hyperparameter.values))
    if isinstance(hyperparameter, types.Int):
        return hparams_api.IntInterval(hyperparameter.min_value, hyperparameter.max_value)
    if isinstance(hyperparameter, types.Float):
        return hparams_api.RealInterval(
            float(hyperparameter.min_value), float(hyperparameter.max_value)
        )
    if isinstance(hyperparameter, types.Boolean):
        return hparams_api.Discrete([False, True])
    if isinstance(hyperparameter, types.Fixed):
        return hparams_api.Discrete([hyperparameter.value])
    return None


def write_hparams(oracle: keras_tuner.Oracle, log_dir: Path) -> None:
    """Write every trial to TensorBoard's HParams dashboard.

    ``log_dir`` gets the experiment (each hyperparameter with its domain, the objective as
    the metric); ``log_dir/trial_<id>/`` one session per trial: its values and, if it
    finished, its objective as a scalar at step 0.
    """
    objective = oracle.objective.name
    hparams = {
        hp.name: hparams_api.HParam(hp.name, hparam_domain(hp))
        for hp in oracle.hyperparameters.space
    }
    metric = hparams_api.Metric(objective, display_name=f"{objective} (trial objective)")
    experiment = tf.summary.create_file_writer(str(log_dir))
    with experiment.as_default():
        hparams_api.hparams_config(hparams=list(hparams.values()), metrics=[metric])
    experiment.close()
    for trial in oracle.trials.values():
        values = {
            hparams.get(name, name): value for name, value in trial.hyperparameters.values.items()
        }
        writer = tf.summary.create_file_writer(str(log_dir / f"trial_{trial.trial_id}"))
        with writer.as_default():
            hparams_api.hparams(values, trial_id=str(trial.trial_id))
            if trial.score is not None:
                tf.summary.scalar(objective, float(trial.score), step=0)
        writer.close()


def tune_task(
    task: Task,
    settings: RunSettings,
    overrides: Mapping[str, Any],
    trials: int,
    algorithm: str = "random",
    distribution: Distribution | None = None,
) -> dict[str, Any] | None:
    """Search ``trials`` hyperparameter sets (small epochs); return the best set found.

    ``trials`` must be >= 1 (keras-tuner takes 0 as "no limit"); raises ValueError otherwise.
    With a ``distribution``, the chief serves the oracle until its workers have run every
    trial, then records them and returns the best set; a worker runs trials until the
    chief has none left and returns None (the chief holds the records).
    """
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    keras.utils.set_random_seed(settings.seed)
    hparams = resolve_hparams(task, settings.preset, overrides)
    # Trials are short: a tuning run compares settings, the final run trains to convergence.
    hparams["epochs"] = int(overrides.get("epochs") or hparams.get("tune_epochs", 5))
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with stage("prepare data"):
        data = prepare_data(task, settings, hparams)
    quantity, mode = task.monitor()
    role = "" if distribution is None else f" as {distribution.tuner_id}"
    with distributed(distribution), stage(f"search {trials} trials{role}"):
        tuner = make_tuner(task, data, hparams, settings, trials, algorithm)
        # The data arguments are TaskHyperModel.fit's own, per trial.
        tuner.search(
            epochs=hparams["epochs"],
            callbacks=[
                *monitor_callbacks(task, hparams, data),
                keras.callbacks.EarlyStopping(quantity, mode=mode, patience=2),
            ],
            verbose=2,
        )
    if distribution is not None and not distribution.is_chief:
        return None
    rows = record_trials(tuner, settings.run_dir)
    logger().info("recorded %d trials in %s", len(rows), settings.run_dir / TRIALS_CSV)
    write_hparams(tuner.oracle, settings.run_dir / TENSORBOARD_DIR)
    best: dict[str, Any] = dict(tuner.get_best_hyperparameters(1)[0].values)
    return best
