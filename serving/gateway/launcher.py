"""Run the gateway under gunicorn as a child process (integration tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONFIG = Path(__file__).resolve().parent / "gunicorn_conf.py"
APP = "serving.gateway.app:create_app()"


@dataclass(frozen=True)
class RunningGateway:
    """A gunicorn master serving the gateway on ``url``."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float

    def log_text(self) -> str:
        """What gunicorn and the app wrote so far."""
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """Pids of the master's worker processes (from /proc, Linux only)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


def free_port() -> int:
    """A port that was free a moment ago (bind to 0, read, release)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(url: str, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Poll ``url`` until it answers 200 (bounded); fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with code {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def running_gateway(
    settings_env: Mapping[str, str], workers: int = 2, threads: int = 4, timeout: float = 60.0
) -> Iterator[RunningGateway]:
    """Start gunicorn with ``GATEWAY_*`` settings on a free port; stop it (SIGTERM) after."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "GATEWAY_PORT": str(port),
        "GATEWAY_BIND_HOST": "127.0.0.1",
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_THREADS": str(threads),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        **settings_env,
    }
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), APP]
    log_file = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=PROJECT_ROOT
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", timeout, process)
        yield RunningGateway(url, process, log_path, time.perf_counter() - start)
    except BaseException:
        sys.stderr.write(log_path.read_text(errors="replace")[-10000:])
        raise
    finally:
        _stop(process)
        log_path.unlink(missing_ok=True)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of the workers
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
