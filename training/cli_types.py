"""The argparse types of ``python -m training``'s options: numbers and folders are checked
while the command line is parsed, so a bad one ends with exit code 2 and argparse's one-line
``error: argument --X: ...`` before anything is read or trained."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from serving.contract import repo_layout_problem
from training.export_arguments import output_folder_problem

MAX_SEED = 2**32 - 1


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
