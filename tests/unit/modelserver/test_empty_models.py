"""A model without any version folder is logged once, in TF Serving's words (not silently)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from serving.modelserver.config import ModelSettings
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics

WORDS = "No versions of servable"


def test_a_missing_or_empty_base_path_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the new-user trial: such a model was only "not found" to clients, with nothing
    # in the model server's log to say where it looked.
    (tmp_path / "empty").mkdir()
    models = [
        ModelSettings("ghost", tmp_path / "absent"),
        ModelSettings("empty", tmp_path / "empty"),
    ]
    manager = ModelManager(models, ServerMetrics(), poll_seconds=0)
    with caplog.at_level(logging.WARNING, logger="serving.modelserver.manager"):
        manager.poll_once()
        manager.poll_once()
    warnings = [record.getMessage() for record in caplog.records if WORDS in record.getMessage()]
    assert len(warnings) == 2
    assert str(tmp_path / "absent") in warnings[0] and str(tmp_path / "empty") in warnings[1]
    (tmp_path / "empty" / "latest").mkdir()  # still no version: no new warning
    caplog.clear()
    manager.poll_once()
    assert not [record for record in caplog.records if WORDS in record.getMessage()]
    manager.stop()
