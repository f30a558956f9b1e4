"""Fixtures of the gateway's runtime tests: the tiny qa runtime, legacy copies, a copied qa."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving.contract import ASSETS_DIR
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings
from tests.support.legacy_repo import make_legacy

RUNTIME_SETTINGS = GatewaySettings(max_chars_per_text=50, max_instances_per_batch=2, max_top_k=3)


@pytest.fixture(scope="module")
def qa(tiny_repo: Path) -> ModelRuntime:
    """The tiny qa version 1, loaded with :data:`RUNTIME_SETTINGS`."""
    return load_runtime(tiny_repo, "qa", 1, RUNTIME_SETTINGS)


@pytest.fixture(scope="module")
def legacy_repo(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every tiny model as a version exported before the serving spec."""
    repo = tmp_path_factory.mktemp("legacy")
    for model in ("qa", "profile", "similarity"):
        shutil.copytree(tiny_repo / model / "1", repo / model / "1")
        make_legacy(repo / model / "1", model)
    return repo


def copy_qa(tiny_repo: Path, tmp_path: Path) -> Path:
    """A copy of the tiny qa version 1 under ``tmp_path``; returns its assets.extra folder."""
    shutil.copytree(tiny_repo / "qa" / "1", tmp_path / "qa" / "1")
    return tmp_path / "qa" / "1" / ASSETS_DIR
