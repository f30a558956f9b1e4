"""A worker out of file descriptors (a low ``ulimit -n``, a leak elsewhere) while it meets a
version: the version is checked again later, never refused for the worker's state.

Found by the adversarial repo pass 6: the spec that could not be opened (EMFILE) was
reported as an "invalid serving_spec.json", a verdict kept until the version's files change,
so the version stayed refused (404 when pinned) once descriptors were free again.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from serving import contract
from tests.api.conftest import gateway_app
from tests.support.model_server import ModelServerHandle

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}


@contextmanager
def no_descriptors_left() -> Iterator[None]:
    """Every file descriptor this process may open is taken while the block runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    taken: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    try:
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as error:
                assert error.errno == errno.EMFILE
                break
        yield
    finally:
        for descriptor in taken:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_version_met_without_descriptors_is_checked_again(
    tiny_repo: Path, model_server: ModelServerHandle
) -> None:
    pinned = "/v1/models/qa/versions/1:predict"
    with gateway_app(tiny_repo, model_server.grpc_target, models=["qa"]) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        registry = app.extensions["gateway"].registry
        registry.backend.model_status("qa")  # connected before: the channel keeps its socket
        with no_descriptors_left():
            polled = registry.refresh_model("qa")
            refused = client.post(pinned, json={"inputs": QA})
        assert polled.routed is None and polled.error == (
            "version 1: fit check pending (backend busy or files unreadable now)"
        )
        assert refused.status_code == 503, refused.json
        assert refused.json == {
            "error": "model 'qa' version 1 cannot be loaded now (the gateway is out of file "
            "descriptors or memory); retry later",
            "detail": [],
        }
        assert refused.headers["Retry-After"]
        assert client.post(pinned, json={"inputs": QA}).status_code == 200
        assert client.post("/v1/qa", json=QA).status_code == 200


def test_architecture_files_read_without_descriptors_are_a_503(
    tiny_repo: Path, model_server: ModelServerHandle, tmp_path: Path
) -> None:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    (version,) = contract.version_dirs(repo / "qa").values()
    (version / contract.ASSETS_DIR / "summary.txt").write_text("Model: qa\n")
    with gateway_app(repo, model_server.grpc_target, models=["qa"]) as app:
        client: Any = app.test_client()  # its .json is Any | None to mypy
        assert client.get("/v1/models/qa/architecture.txt").status_code == 200
        with no_descriptors_left():
            refused = client.get("/v1/models/qa/architecture.txt")
        assert refused.status_code == 503, refused.json
        assert refused.json["error"] == "the architecture files cannot be read now; retry later"
        assert client.get("/v1/models/qa/architecture.txt").status_code == 200
