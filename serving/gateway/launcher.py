"""Run the gateway under gunicorn as a child process (integration tests and benchmarks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from serving.processes import free_port, stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]


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
    settings_env: Mapping[str, str],
    workers: int = 2,
    threads: int = 4,
    timeout: float = 60.0,
    ready_path: str = "/healthz",
    root: Path = PROJECT_ROOT,
    python: str = sys.executable,
) -> Iterator[RunningGateway]:
    """Start gunicorn with ``GATEWAY_*`` settings on a free port; stop it (SIGTERM) after.

    It is handed over once ``ready_path`` answers 200 (``/readyz`` to wait for the models too).
    ``root``: the source tree to run (another checkout, for before/after benchmarks);
    ``python``: the interpreter to run it with (another virtualenv's, same benchmarks).
    """
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    environment = {
        **os.environ,
        "PYTHONPATH": str(root),
        "GATEWAY_PORT": str(port),
        "GATEWAY_BIND_HOST": "127.0.0.1",
        "GATEWAY_WORKERS": str(workers),
        "GATEWAY_THREADS": str(threads),
        "PROMETHEUS_MULTIPROC_DIR": metrics_dir,
        **settings_env,
    }
    # The multihead-gateway command (gunicorn with gunicorn_conf.py), as installed users run it.
    command = [python, "-m", "serving.gateway.command"]
    log_file = tempfile.NamedTemporaryFile(prefix="gateway-", suffix=".log", delete=False)  # noqa: SIM115
    log_path = Path(log_file.name)
    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=root
    )
    log_file.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}{ready_path}", timeout, process)
        yield RunningGateway(url, process, log_path, time.perf_counter() - start)
    except BaseException:
        sys.stderr.write(log_path.read_text(errors="replace")[-10000:])
        raise
    finally:
        stop_process(process, timeout=30.0)
        log_path.unlink(missing_ok=True)
        shutil.rmtree(metrics_dir, ignore_errors=True)
