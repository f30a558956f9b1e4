"""Start the local model server as a subprocess for tests (or use an external TF Serving).

``running_model_server(repo)`` runs ``python -m serving.modelserver`` on free ports with the
repo's ``models.config`` and waits (bounded) until every configured model is AVAILABLE.
If ``TFSERVING_GRPC_TARGET`` and ``TFSERVING_REST_URL`` are set, nothing is started and the
handle points at that server instead, so the same tests run against the official TF Serving.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

GRPC_TARGET_ENV = "TFSERVING_GRPC_TARGET"
REST_URL_ENV = "TFSERVING_REST_URL"
READY_LINE = re.compile(r"modelserver ready grpc_port=(\d+) rest_port=(\d+)")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


def configured_models(repo: Path) -> list[str]:
    """Model names in the repo's models.config (read without importing TensorFlow)."""
    text = (repo / "models.config").read_text()
    return re.findall(r'^\s*name:\s*"([^"]+)"', text, flags=re.MULTILINE)


def server_command(
    repo: Path, *, batching: bool, batching_parameters_file: Path | None, extra_args: Sequence[str]
) -> list[str]:
    """The command line that starts the local server for repo on OS-chosen ports."""
    command = [
        sys.executable,
        "-m",
        "serving.modelserver",
        "--port=0",
        "--rest_api_port=0",
        "--host=127.0.0.1",
        f"--model_config_file={repo / 'models.config'}",
        "--file_system_poll_wait_seconds=1",
    ]
    monitoring = repo / "monitoring.config"
    if monitoring.exists():
        command.append(f"--monitoring_config_file={monitoring}")
    if batching:
        command.append("--enable_batching=true")
        parameters = batching_parameters_file or repo / "batching_parameters.txt"
        if parameters.exists():
            command.append(f"--batching_parameters_file={parameters}")
    return [*command, *extra_args]


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
    with tempfile.NamedTemporaryFile(
        "w", prefix="modelserver-", suffix=".stderr", delete=False
    ) as err:
        stderr_path = Path(err.name)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with stderr_path.open("w") as stderr_file:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env=environment,
            cwd=PROJECT_ROOT,
        )
    handle: ModelServerHandle | None = None
    try:
        grpc_port, rest_port = _read_ports(process, startup_timeout)
        handle = ModelServerHandle(
            grpc_target=f"127.0.0.1:{grpc_port}",
            rest_url=f"http://127.0.0.1:{rest_port}",
            process=process,
            stderr_path=stderr_path,
        )
        if wait_for_models:
            wait_until_available(handle.rest_url, configured_models(repo), startup_timeout)
        yield handle
    except BaseException:
        sys.stderr.write(f"--- model server stderr ({' '.join(command)}) ---\n")
        sys.stderr.write(stderr_path.read_text(errors="replace")[-20000:])
        raise
    finally:
        stop_process(process)
        stderr_path.unlink(missing_ok=True)


def _read_ports(process: subprocess.Popen[str], timeout: float) -> tuple[int, int]:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if process.poll() is not None:
                raise RuntimeError(f"model server exited with code {process.returncode}") from None
            continue
        match = READY_LINE.search(line)
        if match:
            return int(match.group(1)), int(match.group(2))
    raise TimeoutError(f"model server not ready after {timeout} s")


def _pump(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:  # keeps draining stdout so the server never blocks on a full pipe
        lines.put(line)


def wait_until_available(rest_url: str, models: Sequence[str], timeout: float = 60.0) -> None:
    """Poll REST model status until each model has an AVAILABLE version (bounded)."""
    deadline = time.monotonic() + timeout
    pending = list(models)
    while pending:
        name = pending[0]
        try:
            reply = requests.get(f"{rest_url}/v1/models/{name}", timeout=5)
            states = [entry["state"] for entry in reply.json().get("model_version_status", [])]
        except (requests.RequestException, ValueError):
            states = []
        if "AVAILABLE" in states:
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {name} not AVAILABLE after {timeout} s: {states}")
        time.sleep(0.2)


def stop_process(process: subprocess.Popen[str], timeout: float = 20.0) -> int:
    """SIGTERM, then SIGKILL after timeout; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
