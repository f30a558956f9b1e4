"""A profile task that keeps what it prepared and fitted, for comparison with the export;
the tiny preset's run on the blog fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.tasks.base import RunSettings
from training.tasks.profile import ProfileTask

BLOG_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "blogs"


class CapturingProfileTask(ProfileTask):
    """Keeps the prepared data and the fitted model for comparison with the export."""

    def prepare(self, settings: Any, hparams: Any) -> Any:
        self.data = super().prepare(settings, hparams)
        return self.data

    def build_model(self, hparams: Any, data: Any) -> Any:
        self.model = super().build_model(hparams, data)
        return self.model


@dataclass(frozen=True)
class ProfileRun:
    """What a pipeline run left: the exported version, the task (prepared data, fitted
    model) and the run's settings."""

    version: Path
    task: CapturingProfileTask
    settings: RunSettings


def train_tiny_profile(root: Path) -> ProfileRun:
    """``train_task`` of the profile task, tiny preset, on the blog fixtures, into ``root``."""
    from training.pipeline import train_task

    settings = RunSettings(
        data_dir=BLOG_FIXTURES, model_repo=root / "repo", run_dir=root / "run", preset="tiny"
    )
    task = CapturingProfileTask()
    return ProfileRun(train_task(task, settings, {}), task, settings)
