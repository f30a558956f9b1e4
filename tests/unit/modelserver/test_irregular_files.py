"""A SavedModel file that is a FIFO fails its version's load instead of hanging the poller.

Found by the adversarial repo pass 3: ``variables/variables.index`` (or any file TensorFlow
reads at load) being a FIFO kept the load waiting for a writer forever, in the poller's
thread: the version stayed LOADING, no model's versions or config changed any more, and a
shutdown (which joins the poller) never ended. Now such a version is END with a short reason
and is loaded at once when a regular file replaces the FIFO.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from serving.modelserver import versions
from serving.modelserver.config import ModelSettings, VersionPolicy
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics

HANG_BOUND = 60.0  # seconds: a load of half_plus_two takes well under one


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.support.tfserving_models import build_conformance_repo

    repo = build_conformance_repo(tmp_path_factory.mktemp("conformance"))
    return next((repo / "half_plus_two").iterdir())


def _poll_bounded(manager: ModelManager, fifo: Path) -> bool:
    """Poll once; True when the poll ended (a hung one is released by writing to the FIFO)."""
    poll = threading.Thread(target=manager.poll_once, daemon=True)
    poll.start()
    poll.join(HANG_BOUND)
    if not poll.is_alive():
        return True
    with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):  # EOF for the reader
        pass
    poll.join()
    return False


def test_a_fifo_in_a_saved_model_fails_the_load_and_the_poller_goes_on(
    saved_model: Path, tmp_path: Path
) -> None:
    base = tmp_path / "m"
    shutil.copytree(saved_model, base / "1")
    shutil.copytree(saved_model, base / "2")
    index = base / "2" / "variables" / "variables.index"
    index.unlink()
    os.mkfifo(index)
    policy = VersionPolicy(kind="all")
    manager = ModelManager([ModelSettings("m", base, policy)], ServerMetrics(), poll_seconds=0)
    try:
        assert _poll_bounded(manager, index), "the poll waited on the FIFO"
        states = {state.version: state for state in manager.statuses("m")}
        assert states[2].state == "END" and "IrregularFileError" in states[2].error_message
        assert str(base) not in states[2].error_message
        assert states[1].state == "AVAILABLE"
        x = np.array([[2.0]], dtype=np.float32)
        answer = manager.resolve("m").predict("serving_default", {"x": x})
        assert float(answer["y"][0][0]) == 3.0
        index.unlink()
        shutil.copy(saved_model / "variables" / "variables.index", index)  # repaired
        manager.poll_once()  # its files changed: retried at once
        assert manager.resolve("m").version == 2
    finally:
        manager.stop()


def test_the_walk_follows_symlinks_once_and_skips_assets_extra(tmp_path: Path) -> None:
    (tmp_path / "variables").mkdir()
    (tmp_path / "variables" / "loop").symlink_to(tmp_path)  # a loop: walked once
    (tmp_path / "saved_model.pb").write_bytes(b"")
    (tmp_path / "assets.extra").mkdir()
    os.mkfifo(tmp_path / "assets.extra" / "tokenizer.json")  # the gateway's to refuse
    versions.check_regular_files(tmp_path)
    (tmp_path / "assets").symlink_to("/dev/null")  # a device: read without end
    with pytest.raises(versions.IrregularFileError):
        versions.check_regular_files(tmp_path)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_a_warmup_file_that_is_no_regular_file_fails_the_load(
    saved_model: Path, tmp_path: Path, kind: str
) -> None:
    # Found by the adversarial repo pass 5: is_file() took it for no warmup file, and the
    # version was served unwarmed; TF Serving fails the load (the file exists, its read
    # fails), and a FIFO would have blocked it.
    base = tmp_path / "m"
    shutil.copytree(saved_model, base / "1")
    warmup = base / "1" / "assets.extra" / "tf_serving_warmup_requests"
    warmup.parent.mkdir(exist_ok=True)
    warmup.unlink(missing_ok=True)
    if kind == "folder":
        warmup.mkdir()
    else:
        os.mkfifo(warmup)
    policy = VersionPolicy(kind="all")
    manager = ModelManager([ModelSettings("m", base, policy)], ServerMetrics(), poll_seconds=0)
    try:
        assert _poll_bounded(manager, warmup), "the poll waited on the warmup FIFO"
        (state,) = manager.statuses("m")
        assert state.state == "END"
        assert "IrregularFileError" in state.error_message  # details in the server log
    finally:
        manager.stop()
