"""Look up a training task by model name, importing only the task that is asked for."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # base imports keras; the CLI's fetch command must start without it
    from training.tasks.base import Task

TASK_CLASSES = {
    "qa": ("training.tasks.qa", "QaTask"),
    "profile": ("training.tasks.profile", "ProfileTask"),
    "similarity": ("training.tasks.similarity", "SimilarityTask"),
    "nli": ("training.tasks.nli", "NliTask"),
}
TASK_NAMES = tuple(TASK_CLASSES)
# Each task's ``--arch`` values (its models module's ARCHITECTURES), here so that the CLI can
# check the option before importing Keras or reading data.
ARCHITECTURES = {
    "qa": ("memnet", "classic"),
    "profile": ("tfidf", "bag", "classic"),
    "similarity": ("minilm", "classic"),
    "nli": ("minilm", "random"),
}


def get_task(name: str) -> Task:
    """A new instance of the named task (``qa``, ``profile``, ``similarity`` or ``nli``)."""
    if name not in TASK_CLASSES:
        raise KeyError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    module_name, class_name = TASK_CLASSES[name]
    # Imported lazily: each task pulls in its own heavy dependencies and data readers.
    task_class = getattr(importlib.import_module(module_name), class_name)
    task: Task = task_class()
    return task
