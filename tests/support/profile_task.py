"""A profile task that keeps what it prepared and fitted, for comparison with the export."""

from __future__ import annotations

from typing import Any

from training.tasks.profile import ProfileTask


class CapturingProfileTask(ProfileTask):
    """Keeps the prepared data and the fitted model for comparison with the export."""

    def prepare(self, settings: Any, hparams: Any) -> Any:
        self.data = super().prepare(settings, hparams)
        return self.data

    def build_model(self, hparams: Any, data: Any) -> Any:
        self.model = super().build_model(hparams, data)
        return self.model
