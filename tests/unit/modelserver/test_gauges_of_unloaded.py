"""Gauges describe what is loaded now: an unloaded version's queue depth and a removed model's
available-version count are dropped, not left at their last value for the server's life.

A model removed from models.config left ``modelserver_available_versions{model}`` at 0 (an
alert on "no version available" fired for a model no longer served), and each unloaded
version left its ``modelserver_queue_depth`` series.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving.modelserver.config import BatchingSettings, ModelSettings
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics


@pytest.fixture(scope="module")
def half_plus_two(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    return repo / "half_plus_two"


def _series(metrics: ServerMetrics, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    ]


def test_unloaded_versions_and_removed_models_leave_no_gauges(
    half_plus_two: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    shutil.copytree(half_plus_two, base)
    metrics = ServerMetrics()
    models = [ModelSettings("m", base)]
    manager = ModelManager(models, metrics, batching=BatchingSettings(), poll_seconds=0)
    try:
        manager.poll_once()
        (version,) = [state.version for state in manager.statuses("m")]
        assert _series(metrics, "modelserver_queue_depth") == [
            {"model": "m", "version": str(version)}
        ]
        shutil.rmtree(base)
        base.mkdir()  # no version left: TF Serving unloads every version
        manager.poll_once()
        assert _series(metrics, "modelserver_queue_depth") == []
        assert _series(metrics, "modelserver_available_versions") == [{"model": "m"}]
        manager.update_models([])  # the model removed from models.config
        assert _series(metrics, "modelserver_available_versions") == []
    finally:
        manager.stop()
