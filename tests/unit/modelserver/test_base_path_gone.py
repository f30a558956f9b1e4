"""A base path that cannot be listed unloads nothing; an existing empty one unloads all.

Found by the adversarial repo pass: a model folder moved away for a moment (a volume being
remounted, ``mv qa qa.old && mv qa.new qa``) made the poller see no versions and unload every
loaded one, so each request was 404 until the next poll loaded them again. TF Serving's
``PollFileSystemForServable`` fails for a base path that does not exist or cannot be listed
and emits nothing, so its loaded versions keep serving; an existing folder without versions
is an empty list, which unloads them.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.modelserver.config import ModelSettings
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    return repo / "half_plus_two"


def _answer(manager: ModelManager) -> float:
    state = manager.resolve("m")
    outputs = state.predict("serving_default", {"x": np.array([[2.0]], dtype=np.float32)})
    return float(outputs["y"][0][0])


def test_a_base_path_that_cannot_be_listed_keeps_its_versions(
    half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base)
    manager = ModelManager([ModelSettings("m", base)], ServerMetrics(), poll_seconds=0)
    try:
        manager.poll_once()
        assert _answer(manager) == 3.0
        base.rename(tmp_path / "away")  # gone for a moment
        with caplog.at_level(logging.WARNING, logger="serving.modelserver.manager"):
            manager.poll_once()
        assert [state.state for state in manager.statuses("m")] == ["AVAILABLE"]
        assert _answer(manager) == 3.0
        assert "cannot be listed" in caplog.text
        base.write_text("not a folder")  # listing fails (NotADirectoryError)
        manager.poll_once()
        assert _answer(manager) == 3.0
        base.unlink()
        (tmp_path / "away").rename(base)  # back: nothing to reload
        manager.poll_once()
        assert _answer(manager) == 3.0
        shutil.rmtree(base)
        base.mkdir()  # there, and empty: TF Serving unloads every version
        manager.poll_once()
        assert [state.state for state in manager.statuses("m")] == ["END"]
    finally:
        manager.stop()


def test_a_loaded_version_whose_saved_model_file_is_gone_for_a_moment_keeps_serving(
    half_plus_two: Path, tmp_path: Path
) -> None:
    # Found by the adversarial repo pass 7: a build copied over the loaded version's folder
    # (saved_model.pb removed first) made it no version: unloaded, every request NOT_FOUND.
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base)
    (version,) = base.iterdir()
    manager = ModelManager([ModelSettings("m", base)], ServerMetrics(), poll_seconds=0)
    try:
        manager.poll_once()
        (version / "saved_model.pb").rename(tmp_path / "saved_model.pb")
        manager.poll_once()
        assert [state.state for state in manager.statuses("m")] == ["AVAILABLE"]
        assert _answer(manager) == 3.0
        (tmp_path / "saved_model.pb").rename(version / "saved_model.pb")
        manager.poll_once()
        assert _answer(manager) == 3.0
        (base / "124").mkdir()  # a newer version still being copied: not loaded, none dropped
        manager.poll_once()
        assert [state.state for state in manager.statuses("m")] == ["AVAILABLE"]
    finally:
        manager.stop()
