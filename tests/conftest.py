"""Shared fixtures: tiny real SavedModels exported once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model_repo with one tiny version of each model (qa, profile, similarity)."""
    from training.tiny import build_tiny_repo

    return build_tiny_repo(tmp_path_factory.mktemp("model_repo"))


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared datasets folder (``DATA_DIR`` or ``../shared/datasets``)."""
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("DATA_DIR", root.parent / "shared" / "datasets"))
