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


def test_a_numbered_folder_that_is_no_version_is_warned_about_once_with_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the new-user trial (newuser9): a numbered folder without a SavedModel (empty,
    # half-copied, or the SavedModel one folder too deep) and a symlink loop were skipped
    # without a word: the version was never served and the log did not say why.
    base = tmp_path / "reviews"
    (base / "7").mkdir(parents=True)
    (base / "8" / "export").mkdir(parents=True)
    (base / "8" / "export" / "saved_model.pb").write_bytes(b"")
    (base / "9").symlink_to("9")
    (base / "10").write_text("a file")
    (base / "abc").mkdir()
    (base / "README.md").write_text("not a version, not worth a word")
    manager = ModelManager([ModelSettings("reviews", base)], ServerMetrics(), poll_seconds=0)
    with caplog.at_level(logging.WARNING, logger="serving.modelserver.manager"):
        manager.poll_once()
        manager.poll_once()
    skips = sorted(r.getMessage() for r in caplog.records if "skipping" in r.getMessage())
    assert len(skips) == 5, skips
    by_name = {message.split("'")[1]: message for message in skips}
    assert set(by_name) == {"7", "8", "9", "10", "abc"}
    assert "not a version yet: it holds no saved_model.pb or" in by_name["7"]
    assert "export/saved_model.pb is in it: the version folder itself" in by_name["8"]
    assert "cannot be read: Too many levels of symbolic links" in by_name["9"]
    assert "a version is a folder" in by_name["10"]
    assert "named by ASCII digits" in by_name["abc"]
    manager.stop()
