"""Shared fixtures: tiny real SavedModels exported once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.model_server import ModelServerHandle, running_model_server

if TYPE_CHECKING:  # its module imports TensorFlow: only the fixture that trains loads it
    from tests.support.profile_task import ProfileRun

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model_repo with one tiny version of each model (qa, profile, similarity)."""
    from training.tiny import build_tiny_repo

    return build_tiny_repo(tmp_path_factory.mktemp("model_repo"))


@pytest.fixture(scope="session")
def tiny_model_server(tiny_repo: Path) -> Iterator[ModelServerHandle]:
    """The local model server (no batching) on ``tiny_repo`` for the whole session, or the
    external one (tests/support/model_server.py). One start costs ~4 s on 2 cores; every test
    that only sends it requests shares this one. A test that pauses, stops or reconfigures
    its server, or edits its repo, starts its own (``own_model_server``)."""
    with running_model_server(tiny_repo) as handle:
        yield handle


@pytest.fixture(scope="session")
def qa_evidence_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny memnet trained on qa1 until it finds the supporting sentence, exported once
    (tests/support/qa_export.py): (its data folder, its version folder). Read it only."""
    from tests.support.qa_export import train_qa_evidence

    return train_qa_evidence(tmp_path_factory.mktemp("qa_evidence"))


@pytest.fixture(scope="session")
def profile_tiny_run(tmp_path_factory: pytest.TempPathFactory) -> ProfileRun:
    """The profile task's tiny pipeline run on the blog fixtures, once (tests/support/
    profile_task.py): test_profile checks its export, test_profile_band_served serves it.
    Read it only."""
    from tests.support.profile_task import train_tiny_profile

    return train_tiny_profile(tmp_path_factory.mktemp("profile_tiny"))


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared datasets folder (``DATA_DIR`` or ``../shared/datasets``)."""
    root = Path(__file__).resolve().parents[1]
    return Path(os.environ.get("DATA_DIR", root.parent / "shared" / "datasets"))
