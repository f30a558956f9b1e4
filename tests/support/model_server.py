"""Start the local model server as a subprocess for tests (or use an external TF Serving).

``running_model_server(repo)`` runs ``python -m serving.modelserver`` on free ports with the
repo's ``models.config`` and waits (bounded) until every configured model is AVAILABLE.
If ``TFSERVING_GRPC_TARGET`` and ``TFSERVING_REST_URL`` are set, nothing is started and the
handle points at that server instead, so the same tests run against the official TF Serving.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from serving.modelserver.launcher import (
    configured_models,
    launch,
    server_command,
    wait_until_available,
)
from serving.processes import stop_process

GRPC_TARGET_ENV = "TFSERVING_GRPC_TARGET"
REST_URL_ENV = "TFSERVING_REST_URL"
__all__ = [
    "ModelServerHandle",
    "external_server",
    "own_model_server",
    "running_model_server",
    "stop_process",
]


@dataclass(frozen=True)
class ModelServerHandle:
    """Where a running model server listens; ``process`` is None for an external server."""

    grpc_target: str
    rest_url: str
    process: subprocess.Popen[str] | None = None
    stderr_path: Path | None = None

    @property
    def external(self) -> bool:
        """True when the handle points at a server these tests did not start."""
        return self.process is None

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far (empty for an external server)."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""


def external_server() -> ModelServerHandle | None:
    """A handle for the server named by the environment, if both variables are set."""
    grpc_target, rest_url = os.environ.get(GRPC_TARGET_ENV), os.environ.get(REST_URL_ENV)
    if grpc_target and rest_url:
        return ModelServerHandle(grpc_target=grpc_target, rest_url=rest_url.rstrip("/"))
    return None


@contextmanager
def running_model_server(
    repo: Path,
    *,
    batching: bool = False,
    batching_parameters_file: Path | None = None,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 120.0,
    wait_for_models: bool = True,
) -> Iterator[ModelServerHandle]:
    """Run the local model server for repo (or use the external one) until the block ends."""
    external = external_server()
    if external is not None:
        yield external
        return
    command = server_command(
        repo,
        batching=batching,
        batching_parameters_file=batching_parameters_file,
        extra_args=extra_args,
    )
    launched = launch(command, startup_timeout)
    handle = ModelServerHandle(
        grpc_target=launched.grpc_target,
        rest_url=launched.rest_url,
        process=launched.process,
        stderr_path=launched.stderr_path,
    )
    try:
        if wait_for_models:
            wait_until_available(handle.rest_url, configured_models(repo), startup_timeout)
        yield handle
    except BaseException:
        sys.stderr.write(f"--- model server stderr ({' '.join(command)}) ---\n")
        sys.stderr.write(handle.stderr_text()[-20000:])
        raise
    finally:
        stop_process(launched.process)
        launched.stderr_path.unlink(missing_ok=True)


@contextmanager
def own_model_server(repo: Path, why: str) -> Iterator[ModelServerHandle]:
    """The local model server on a repo the test built; the test is skipped (``why``) when an
    external server is configured, since that one cannot serve the test's own repo."""
    with running_model_server(repo) as handle:
        if handle.external:
            pytest.skip(f"needs the local server: {why}")
        yield handle
