"""Version labels apply only onto AVAILABLE versions; a refused map keeps the one in force
(and a `specific` version policy naming a version not on disk is said in the log).

Found by the adversarial repo pass 7: a models.config whose ``version_labels`` named a
version that does not exist (a typo, ``stable: 2`` before version 2 was published) was
applied as read, so every request by that label was NOT_FOUND; TF Serving
(``ServerCore::UpdateModelVersionLabelMap``) refuses such a reload and keeps its labels, and
moves a label only once its new version answers.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.modelserver.config import ModelSettings, VersionPolicy
from serving.modelserver.errors import ServingError
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    return repo / "half_plus_two" / "00000123"


def _model(base: Path, **labels: int) -> ModelSettings:
    return ModelSettings("m", base, VersionPolicy("all"), tuple(sorted(labels.items())))


def _labelled(manager: ModelManager, label: str) -> int:
    state = manager.resolve("m", label=label)
    outputs = state.predict("serving_default", {"x": np.array([[2.0]], dtype=np.float32)})
    assert float(outputs["y"][0][0]) == 3.0
    return state.version


def test_a_label_naming_a_missing_version_is_not_applied(
    half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base / "1")
    manager = ModelManager([_model(base, stable=1)], ServerMetrics(), poll_seconds=0)
    try:
        manager.poll_once()
        assert _labelled(manager, "stable") == 1
        with caplog.at_level(logging.ERROR, logger="serving.modelserver.labels"):
            manager.update_models([_model(base, stable=2, canary=1)])  # no version 2
            manager.poll_once()
        assert "version 2 of model m, which is not currently available" in caplog.text
        assert _labelled(manager, "stable") == 1  # the labels in force are kept whole
        with pytest.raises(ServingError, match="Unrecognized servable version label: canary"):
            manager.resolve("m", label="canary")
        shutil.copytree(half_plus_two, base / "2")  # published: the label moves once loaded
        manager.poll_once()
        assert (_labelled(manager, "stable"), _labelled(manager, "canary")) == (2, 1)
    finally:
        manager.stop()


def test_a_label_naming_a_missing_version_at_start_is_refused(
    half_plus_two: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base / "1")
    manager = ModelManager([_model(base, stable=7)], ServerMetrics(), poll_seconds=0)
    try:
        manager.poll_once()
        with pytest.raises(ServingError, match="Unrecognized servable version label: stable"):
            manager.resolve("m", label="stable")
    finally:
        manager.stop()


def test_new_labels_may_name_unloaded_versions_when_allowed(
    half_plus_two: Path, tmp_path: Path
) -> None:
    # --allow_version_labels_for_unavailable_models: only labels not assigned now.
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base / "1")
    manager = ModelManager(
        [_model(base, stable=1)], ServerMetrics(), poll_seconds=0, allow_unavailable_labels=True
    )
    try:
        manager.poll_once()
        manager.update_models([_model(base, stable=1, next=2)])
        manager.poll_once()
        with pytest.raises(ServingError, match="Specific\\(m, 2\\)"):
            manager.resolve("m", label="next")
        manager.update_models([_model(base, stable=2, next=2)])  # stable is assigned: kept
        manager.poll_once()
        assert _labelled(manager, "stable") == 1
    finally:
        manager.stop()


def test_a_specific_version_not_on_disk_is_logged_once(
    half_plus_two: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Found by the adversarial repo pass 7: `specific { versions: 2 }` beside a folder 1 only
    # served nothing and said nothing (TF Serving warns).
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base / "1")
    policy = VersionPolicy("specific", versions=(2,))
    manager = ModelManager([ModelSettings("m", base, policy)], ServerMetrics(), poll_seconds=0)
    try:
        with caplog.at_level(logging.WARNING, logger="serving.modelserver.manager"):
            manager.poll_once()
            manager.poll_once()
        warned = "Version 2 of servable m, which was requested to be served as a 'specific'"
        assert caplog.text.count(warned) == 1
    finally:
        manager.stop()
