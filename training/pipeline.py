"""Train one task end to end: prepare -> build -> fit (with callbacks) -> evaluate -> export.

The fit itself (callbacks, data arguments, a task's fit hooks) is :mod:`training.fitting`.
"""

from __future__ import annotations

import json
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
from training.data.errors import DataError
from training.export import export_for_serving
from training.fitting import fit_model
from training.logs import logger
from training.tasks.base import Arrays, PreparedData, RunSettings, Task

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
