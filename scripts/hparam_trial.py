"""Dev tool: one training trial with hyperparameter overrides, scored on validation, not exported.

``python -m scripts.hparam_trial similarity '{"cosent_weight": 1.0}' --data-dir DIR``
runs the pipeline's own prepare, build, fit and evaluate (the preset's hparams with the JSON
object's keys replaced; seed 1337 unless ``--seed``) and prints one ``RESULT {...}`` JSON
line: the task's validation metrics plus the fit's CPU-seconds (user + system of this
process) and wall seconds. Used for the experiment tables of ``training/README_models.md``;
the served defaults are still trained with ``python -m training train``.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from training.fitting import fit_model
from training.pipeline import prepare_data, resolve_hparams
from training.tasks.base import RunSettings
from training.tasks.registry import get_task


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def trial(task_name: str, overrides: dict[str, Any], settings: RunSettings) -> dict[str, Any]:
    """Prepare, build, fit and evaluate one task; metrics plus ``fit_cpu_s`` / ``fit_wall_s``."""
    task = get_task(task_name)
    keras.utils.set_random_seed(settings.seed)
    hparams = resolve_hparams(task, settings.preset, overrides)
    data = prepare_data(task, settings, hparams)
    model = task.build_model(hparams, data)
    cpu, wall = cpu_seconds(), time.perf_counter()
    history = fit_model(task, model, data, hparams, settings)
    fit_cpu, fit_wall = cpu_seconds() - cpu, time.perf_counter() - wall
    metrics = task.evaluate(model, data)
    return {
        "task": task_name,
        "preset": settings.preset,
        "overrides": overrides,
        "metrics": metrics,
        "epochs_run": len(history.epoch),
        "fit_cpu_s": round(fit_cpu),
        "fit_wall_s": round(fit_wall),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the trial, print its ``RESULT`` line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("task")
    parser.add_argument("overrides", nargs="?", default="{}", help="JSON object of hparams")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--runs-dir", type=Path, default=None, help="default: a temp folder")
    parser.add_argument("--seed", type=int, default=1337)
    args = parser.parse_args(argv)
    overrides = json.loads(args.overrides)
    if not isinstance(overrides, dict):
        parser.error("overrides must be a JSON object")
    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="hparam-trial-"))
    settings = RunSettings(
        data_dir=args.data_dir,
        model_repo=runs_dir / "unused-model-repo",
        run_dir=runs_dir / f"{args.task}-{args.preset}-trial",
        preset=args.preset,
        seed=args.seed,
    )
    print("RESULT", json.dumps(trial(args.task, overrides, settings), default=str), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
