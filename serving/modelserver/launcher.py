"""Start ``python -m serving.modelserver`` as a child process and wait until it serves.

Used by the test helper (tests/support/model_server.py) and the benchmark; the server is
asked for OS-chosen ports (0) and reports them on its first stdout line.
"""

from __future__ import annotations

import os
import queue
import re
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

from serving.contract import MODELS_CONFIG_FILE
from serving.models_config import parse_model_names
from serving.processes import stop_process
from serving.url_paths import model_url_path

READY_LINE = re.compile(r"modelserver ready grpc_port=(\d+) rest_port=(\d+)")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The thread that drains a launched server's stdout (:func:`launch`) and closes it at its end.
PUMP_THREAD = "modelserver-stdout"


@dataclass(frozen=True)
class LaunchedServer:
    """A started server process and where it listens."""

    process: subprocess.Popen[str]
    grpc_port: int
    rest_port: int
    stderr_path: Path

    @property
    def grpc_target(self) -> str:
        """``host:port`` for gRPC channels."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        """Base URL of the REST API."""
        return f"http://127.0.0.1:{self.rest_port}"


def configured_models(repo: Path) -> list[str]:
    """Model names in the repo's models.config (read without importing TensorFlow)."""
    return parse_model_names((repo / MODELS_CONFIG_FILE).read_text(encoding="utf-8"))


def server_command(
    repo: Path,
    *,
    batching: bool = False,
    batching_parameters_file: Path | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The command line serving repo on OS-chosen ports (folders, config polled each second)."""
    command = [
        sys.executable,
        "-m",
        "serving.modelserver",
        "--port=0",
        "--rest_api_port=0",
        "--host=127.0.0.1",
        f"--model_config_file={repo / 'models.config'}",
        "--file_system_poll_wait_seconds=1",
        "--model_config_file_poll_wait_seconds=1",
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


def launch(command: Sequence[str], startup_timeout: float = 120.0) -> LaunchedServer:
    """Start the server command and return once it has printed its ports."""
    with tempfile.NamedTemporaryFile(prefix="modelserver-", suffix=".stderr", delete=False) as err:
        stderr_path = Path(err.name)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_path.open("w") as stderr_file:
        process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            env=environment,
            cwd=PROJECT_ROOT,
        )
    try:
        grpc_port, rest_port = _read_ports(process, startup_timeout)
    except BaseException:
        stop_process(process)
        raise
    return LaunchedServer(process, grpc_port, rest_port, stderr_path)


@contextmanager
def running(repo: Path, command: Sequence[str], timeout: float = 120.0) -> Iterator[LaunchedServer]:
    """:func:`launch` ``command``, wait until every model of ``repo`` is AVAILABLE, stop after.

    Raises TimeoutError (from :func:`wait_until_available`) if a model does not load in time.
    """
    server = launch(command, timeout)
    try:
        wait_until_available(server.rest_url, configured_models(repo), timeout)
        yield server
    finally:
        stop_process(server.process)


def _read_ports(process: subprocess.Popen[str], timeout: float) -> tuple[int, int]:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    pump = threading.Thread(target=_pump, args=(process.stdout, lines), name=PUMP_THREAD)
    pump.daemon = True
    pump.start()
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
    # Closed at the pipe's end (the server exited), by the one thread that reads it: it was
    # left to the garbage collector, a ResourceWarning in whichever test a gc came in.
    with stream:
        for line in stream:  # keeps draining stdout so the server never blocks on a full pipe
            lines.put(line)


def model_available(rest_url: str, name: str, timeout: float = 5.0) -> bool:
    """True when TF Serving's REST status of a model lists an AVAILABLE version."""
    try:
        reply = requests.get(rest_url + model_url_path(name), timeout=timeout)
        statuses = reply.json().get("model_version_status", [])
    except (requests.RequestException, ValueError, AttributeError):
        return False
    return any(status.get("state") == "AVAILABLE" for status in statuses)


def wait_until_available(rest_url: str, models: Sequence[str], timeout: float = 60.0) -> None:
    """Poll REST model status until each model has an AVAILABLE version (bounded)."""
    deadline = time.monotonic() + timeout
    pending = list(models)
    while pending:
        if model_available(rest_url, pending[0]):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {pending[0]} not AVAILABLE after {timeout} s")
        time.sleep(0.2)
