"""Command line: ``python -m training train|train-all|tune|fetch``."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE, repo_layout_problem
from serving.gpu_logs import import_tensorflow
from training.data.errors import DataError
from training.export_arguments import output_folder_problem
from training.tasks.registry import ARCHITECTURES, TASK_NAMES
from training.tuning_distribution import (
    add_distribution_options,
    distribution_from_args,
    oracle_bind_problem,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("tiny", "default", "full")
MAX_SEED = 2**32 - 1
PROG = "python -m training"
DATA_DIR_HELP = "default: $DATA_DIR, else ../shared/datasets beside the project"


def default_data_dir() -> Path:
    """``DATA_DIR`` from the environment, else ``../shared/datasets`` next to the project."""
    return Path(os.environ.get("DATA_DIR", PROJECT_ROOT.parent / "shared" / "datasets"))


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (counts: epochs, trials, examples, batch sizes)."""
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def seed_int(text: str) -> int:
    """An argparse type: a seed in [0, 2**32 - 1], the range NumPy and Keras accept."""
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {MAX_SEED}], got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _named_path(text: str) -> Path:
    # Path("") is ".": an empty value (an unset variable in `--model-repo "$REPO"`) had read
    # or written the current folder, models.config and all.
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}")
    return Path(text)


def existing_path(text: str) -> Path:
    """An argparse type: a file or directory that exists (``--data-dir``)."""
    path = _named_path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text!r}")
    return path


def directory_path(text: str) -> Path:
    """An argparse type: a directory, or a path where one can be made (``--model-repo``).

    Refused: an empty value, a path that is a file, or one below a file (checked before
    training, which would otherwise fail only when it writes there).
    """
    path = _named_path(text)
    existing = next((part for part in (path, *path.parents) if part.exists()), Path("."))
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{str(existing)!r} is not a directory")
    return path


def writable_directory_path(text: str) -> Path:
    """An argparse type for the folders a run writes (``--model-repo``, ``--runs-dir``):
    :func:`directory_path` where a folder can be made, tried in its nearest existing folder.

    Neither permissions nor ``os.access`` tell (root passes both on a read-only mount or
    ``/proc``): a ``--model-repo`` there trained the whole run, then ended in a
    ``FileNotFoundError`` traceback at the export.
    """
    path = directory_path(text)
    writable_check(path)
    return path


def writable_check(path: Path) -> None:
    """Raise ``argparse.ArgumentTypeError`` unless a folder can be made where ``path`` is (or
    would be made): ``training.export_arguments.output_folder_problem``."""
    if (problem := output_folder_problem(path)) is not None:
        raise argparse.ArgumentTypeError(problem)


def model_repo_path(text: str) -> Path:
    """An argparse type for ``--model-repo``: :func:`writable_directory_path`, not a model's folder
    or a version folder (``serving.contract.repo_layout_problem``), refused before training
    rather than at its export (``export_for_serving`` refuses it too)."""
    path = writable_directory_path(text)
    if (problem := repo_layout_problem(path)) is not None:
        raise argparse.ArgumentTypeError(problem)
    return path


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by train, train-all and tune (numbers checked here: exit 2 if bad)."""
    parser.add_argument(
        "--preset",
        choices=PRESETS,
        default="default",
        help="tiny (smoke tests, seconds), default (make run), full (best quality, longer)",
    )
    parser.add_argument("--data-dir", type=existing_path, default=None, help=DATA_DIR_HELP)
    parser.add_argument(
        "--model-repo",
        type=model_repo_path,
        default=Path("model_repo"),
        help="the folder of models.config, where versions are exported (default: model_repo)",
    )
    parser.add_argument(
        "--runs-dir",
        type=writable_directory_path,
        default=Path("runs"),
        help="each run's logs, checkpoints and tokenizer (default: runs)",
    )
    parser.add_argument("--seed", type=seed_int, default=1337, help=f"0 to {MAX_SEED}")
    parser.add_argument(
        "--max-examples", type=positive_int, default=None, help="cap (>= 1), for smoke runs"
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="override the preset")
    parser.add_argument("--arch", default=None, help="architecture, e.g. qa: memnet|classic")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its four subcommands."""
    # The module docstring's RST (``...``) showed as is; the epilog points a user with a
    # model of their own to the Python call, which no command here runs.
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Train, tune and export the project's models (qa, profile, similarity, "
        "nli) into a model repo, and fetch their datasets.",
        epilog="A Keras model of your own is exported from Python with "
        "training.export.export_for_serving (training/README.md, 'Serve your own model').",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train and export one model")
    train.add_argument("name", choices=TASK_NAMES)
    add_run_options(train)
    train_all = commands.add_parser("train-all", help="train and export every model")
    add_run_options(train_all)
    tune = commands.add_parser("tune", help="bounded hyperparameter search for one model")
    tune.add_argument("name", choices=TASK_NAMES)
    tune.add_argument("--trials", type=positive_int, default=5, help="trials to run (>= 1)")
    tune.add_argument("--algorithm", choices=("random", "bayesian"), default="random")
    tune.add_argument("--export", action="store_true", help="train and export the best trial")
    add_run_options(tune)
    add_distribution_options(tune)
    fetch = commands.add_parser("fetch", help="download the public datasets and check them")
    fetch.add_argument("--data-dir", type=directory_path, default=None, help=DATA_DIR_HELP)
    fetch.add_argument(
        "--timeout", type=positive_seconds, default=10.0, help="seconds per connection"
    )
    fetch.add_argument("--verify-only", action="store_true", help="only check local files")
    return parser


def run_settings(args: argparse.Namespace, name: str) -> Any:
    """RunSettings for one task from parsed arguments (a fresh timestamped run dir)."""
    from training.tasks.base import RunSettings

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    return RunSettings(
        data_dir=args.data_dir or default_data_dir(),
        model_repo=args.model_repo,
        run_dir=args.runs_dir / f"{name}-{args.preset}-{stamp}",
        preset=args.preset,
        seed=args.seed,
        max_examples=args.max_examples,
    )


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Hyperparameters given on the command line."""
    return {"epochs": args.epochs, "arch": args.arch}


def command_train(args: argparse.Namespace, names: Sequence[str]) -> int:
    """Train and export each named task in turn."""
    from training.pipeline import train_task
    from training.tasks.registry import get_task

    for name in names:
        path = train_task(get_task(name), run_settings(args, name), overrides(args))
        report_export(name, path)
    return 0


def report_export(name: str, path: Path) -> None:
    """Print where a version went and its validation metrics (from its model card)."""
    card = json.loads((path / ASSETS_DIR / MODEL_CARD_FILE).read_text())
    print(f"{name}: validation metrics {json.dumps(card['validation_metrics'], sort_keys=True)}")
    print(f"{name}: trained in {card['training_seconds']} s, exported {path}")


def command_tune(args: argparse.Namespace) -> int:
    """Run the search, print the best hyperparameters, optionally export the best."""
    from training.pipeline import train_task
    from training.tasks.registry import get_task
    from training.tuning import tune_task

    try:
        distribution = distribution_from_args(args)
    except ValueError as error:
        print(f"tune: {error}", file=sys.stderr)
        return 2
    problem = oracle_bind_problem(distribution) if distribution and distribution.is_chief else None
    if problem is not None:
        print(f"tune: {problem}", file=sys.stderr)
        return 2
    role = "" if distribution is None or distribution.is_chief else f"-{distribution.tuner_id}"
    settings = run_settings(args, f"tune-{args.name}{role}")
    best = tune_task(
        get_task(args.name),
        settings,
        overrides(args),
        trials=args.trials,
        algorithm=args.algorithm,
        distribution=distribution,
    )
    if best is None:
        print(f"{role[1:]}: no trials left; the chief records them")
        return 0
    print(f"best hyperparameters: {best}")
    if args.export:
        path = train_task(
            get_task(args.name), run_settings(args, args.name), {**overrides(args), **best}
        )
        report_export(args.name, path)
    return 0


def command_fetch(args: argparse.Namespace) -> int:
    """Download and check the datasets; a clear message and exit code 2 on failure."""
    from training.fetch import FetchError, fetch_all, verify_all

    data_dir = args.data_dir or default_data_dir()
    try:
        if not args.verify_only:
            for note in fetch_all(data_dir, timeout=args.timeout):
                print(f"note: {note}")
        problems = verify_all(data_dir)
    except FetchError as error:
        print(f"fetch failed: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"all datasets present and checked in {data_dir}")
    return 0


def check_arch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 (argparse's error) if ``--arch`` is no architecture of every task it applies to."""
    if args.command == "fetch" or args.arch is None:
        return
    names = TASK_NAMES if args.command == "train-all" else (args.name,)
    for name in names:
        if args.arch not in ARCHITECTURES[name]:
            parser.error(
                f"argument --arch: {args.arch!r} is not an architecture of {name} "
                f"(choose from {', '.join(ARCHITECTURES[name])})"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run a subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arch(parser, args)
    if args.command == "fetch" and not args.verify_only:  # --verify-only only reads the folder
        try:
            writable_check(args.data_dir or default_data_dir())
        except argparse.ArgumentTypeError as error:
            parser.error(f"argument --data-dir: {error}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "fetch":
        return command_fetch(args)
    import_tensorflow()  # without the misleading no-GPU lines on machines without a GPU
    try:
        if args.command == "train":
            return command_train(args, [args.name])
        if args.command == "train-all":
            return command_train(args, TASK_NAMES)
        return command_tune(args)
    except DataError as error:  # unusable data: a clear message, not a traceback
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
