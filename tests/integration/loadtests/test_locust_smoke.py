"""CI smoke run of the load tests: the real stack on free ports, a few seconds of load.

Tiny real models -> local model server (gRPC) -> gateway under gunicorn -> locust with one
user per endpoint and a direct gRPC probe, through the same command users run
(``python -m loadtests.run``). Zero failures and exit code 0 are required.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from scripts import wait_for
from tests.support.model_server import running_model_server, stop_process

ROOT = Path(__file__).resolve().parents[3]
GUNICORN_CONF = ROOT / "serving" / "gateway" / "gunicorn_conf.py"
USERS = "QaUser,ProfileUser,SimilarityUser,GrpcProbeUser"
READY_TIMEOUT_SECONDS = "120"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_gateway(repo: Path, grpc_target: str) -> Iterator[str]:
    """The gateway under gunicorn (one worker) on a free port; yields its base URL."""
    port = free_port()
    config = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        *config,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "serving.gateway.app:create_app()",
    ]
    environment = os.environ | {
        "PYTHONPATH": str(ROOT),
        "GATEWAY_BACKEND": "grpc",
        "GATEWAY_GRPC_TARGET": grpc_target,
        "GATEWAY_MODEL_REPO": str(repo),
        "GATEWAY_PORT": str(port),
    }
    process = subprocess.Popen(command, cwd=ROOT, env=environment, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        waited = ["--url", f"{url}/readyz", "--pid", str(process.pid)]
        assert wait_for.main([*waited, "--timeout", READY_TIMEOUT_SECONDS]) == 0
        yield url
    finally:
        stop_process(process)


@pytest.mark.slow
def test_locust_smoke_run(tiny_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    with (
        running_model_server(tiny_repo, batching=True) as server,
        running_gateway(tiny_repo, server.grpc_target) as gateway_url,
    ):
        command = [
            sys.executable,
            "-m",
            "loadtests.run",
            "--host",
            gateway_url,
            "--grpc-target",
            server.grpc_target,
            "--model-repo",
            str(tiny_repo),
            "--users",
            USERS,
            "--steps",
            "1,2",
            "--step-seconds",
            "4",
            "--step-warmup",
            "1",
            "--out",
            str(out),
        ]
        environment = os.environ | {"PYTHONPATH": str(ROOT)}
        run = subprocess.run(command, cwd=ROOT, env=environment, timeout=120, check=False)
    assert run.returncode == 0
    for name in ("report.html", "locust_stats.csv", "locust_stats_history.csv", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["slo"] == {"passed": True, "violations": []}
    assert [step["users"] for step in summary["steps"]] == [1, 2]
    names = set(summary["steps"][0]["endpoints"])
    assert {"/v1/qa", "/v1/profile", "/v1/similarity", "grpc qa"} <= names
    for step in summary["steps"]:
        assert all(row["failures"] == 0 for row in step["endpoints"].values())
    assert summary["gateway_minus_backend_p50_ms"]
