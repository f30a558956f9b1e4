"""CI smoke run of the load tests: the real stack on free ports, a few seconds of load.

Tiny real models -> local model server (gRPC) -> gateway under gunicorn -> locust with one
user per endpoint and a direct gRPC probe, through the same command users run
(``python -m loadtests.run``). Zero failures and exit code 0 are required.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.gateway.launcher import running_gateway
from tests.support.model_server import running_model_server

ROOT = Path(__file__).resolve().parents[3]
USERS = "QaUser,ProfileUser,SimilarityUser,GrpcProbeUser"
READY_TIMEOUT_SECONDS = 120.0


@pytest.mark.slow
def test_locust_smoke_run(tiny_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    with (
        running_model_server(tiny_repo, batching=True) as server,
        running_gateway(
            {
                "GATEWAY_BACKEND": "grpc",
                "GATEWAY_GRPC_TARGET": server.grpc_target,
                "GATEWAY_MODEL_REPO": str(tiny_repo),
            },
            workers=1,
            timeout=READY_TIMEOUT_SECONDS,
            ready_path="/readyz",
        ) as gateway,
    ):
        command = [
            sys.executable,
            "-m",
            "loadtests.run",
            "--host",
            gateway.url,
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
