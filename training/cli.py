"""Command line: ``python -m training train|train-all|tune|fetch``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from serving.contract import ASSETS_DIR, MODEL_CARD_FILE
from serving.gpu_logs import import_tensorflow
from training.cli_types import (
    MAX_SEED,
    directory_path,
    existing_path,
    model_repo_path,
    positive_int,
    positive_seconds,
    seed_int,
    writable_check,
    writable_directory_path,
)
from training.data.errors import DataError
from training.tasks.registry import ARCHITECTURES, TASK_NAMES
from training.tuning_distribution import (
    add_distribution_options,
    distribution_from_args,
    oracle_bind_problem,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("tiny", "default", "full")
PROG = "python -m training"
DATA_DIR_HELP = "default: $DATA_DIR, else ../shared/datasets beside the project"


def default_data_dir() -> Path:
    """``DATA_DIR`` from the environment, else ``../shared/datasets`` next to the project."""
    return Path(os.environ.get("DATA_DIR", PROJECT_ROOT.parent / "shared" / "datasets"))


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


def check_model_repo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exit 2 (argparse's error) if the export would refuse ``--model-repo``'s
    ``models.config`` (a hand-edited one that does not parse, or a model it cannot take):
    found by newuser9's trial, the run trained, then ended in a ModelConfigError traceback."""
    if args.command == "fetch" or (args.command == "tune" and not args.export):
        return
    from training.model_config import ModelConfigError, models_config_with

    for name in TASK_NAMES if args.command == "train-all" else (args.name,):
        try:
            models_config_with(args.model_repo, name)
        except (ModelConfigError, OSError, UnicodeDecodeError) as error:
            parser.error(f"argument --model-repo: {error}")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run a subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arch(parser, args)
    check_model_repo(parser, args)
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
