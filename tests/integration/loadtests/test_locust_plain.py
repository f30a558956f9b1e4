"""The plain locust command as locust's users run it: -u, -r and -t apply, HTTP users only.

``locust -f loadtests/locustfile.py --host URL --headless -u 4 -r 4 -t 6s`` against the real
stack (tiny models -> local model server -> gateway under gunicorn), from the repository root
without PYTHONPATH, the way the README shows it. Before the fix a step-load shape overrode
-u/-r/-t and gRPC users failed with "GrpcUser needs --grpc-target host:port".
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from serving.gateway.launcher import running_gateway
from tests.support.model_server import ModelServerHandle

ROOT = Path(__file__).resolve().parents[3]
LOCUST = Path(sys.executable).with_name("locust")
HTTP_CLASSES = {"MixedUser", "ProfileUser", "QaUser", "SimilarityUser"}
USERS = 4


def spawned_users(log: str) -> dict[str, int]:
    """The class counts of locust's "All users spawned: {...} (N total users)" line."""
    match = re.search(r"All users spawned: (\{.*?\}) \((\d+) total users\)", log)
    assert match, log[-2000:]
    counts: dict[str, int] = json.loads(match.group(1))
    assert sum(counts.values()) == int(match.group(2))
    return counts


@pytest.mark.slow
def test_plain_locust_command_honours_users_and_run_time(
    tiny_repo: Path, tiny_model_server: ModelServerHandle, tmp_path: Path
) -> None:
    with running_gateway(
        {
            "GATEWAY_BACKEND": "grpc",
            "GATEWAY_GRPC_TARGET": tiny_model_server.grpc_target,
            "GATEWAY_MODEL_REPO": str(tiny_repo),
            # As deployed (deploy/): every request of the users was a 401 without a key.
            "GATEWAY_API_KEYS": "load-test-key",
        },
        workers=1,
        timeout=120.0,
        ready_path="/readyz",
    ) as gateway:
        command = [
            str(LOCUST),
            "-f",
            "loadtests/locustfile.py",
            "--host",
            gateway.url,
            "--headless",
            "-u",
            str(USERS),
            "-r",
            str(USERS),
            "-t",
            "6s",
            "--csv",
            str(tmp_path / "locust"),
            "--only-summary",
        ]
        environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        environment["LOADTEST_API_KEY"] = "load-test-key"
        # A bounded wait far above -t: a shape that ignored -t would run into it and fail.
        run = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=90
        )
        # The load test of any served model (loadtests/served_models.py), on the same gateway.
        models = [*command[:2], "loadtests/served_models.py", *command[3:]]
        models[models.index("6s")] = "3s"
        models[models.index(str(tmp_path / "locust"))] = str(tmp_path / "models")
        served = subprocess.run(
            models, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=90
        )
    log = run.stderr + run.stdout
    assert run.returncode == 0, log[-3000:]
    assert "--run-time limit reached, shutting down" in log
    counts = spawned_users(log)
    assert sum(counts.values()) == USERS
    assert set(counts) <= HTTP_CLASSES
    assert "grpc" not in log.lower()
    with (tmp_path / "locust_stats.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] != "Aggregated"]
    assert rows
    assert all(row["Type"] == "POST" and row["Name"].startswith("/v1/") for row in rows)
    assert all(row["Failure Count"] == "0" for row in rows)

    served_log = served.stderr + served.stdout
    assert served.returncode == 0, served_log[-3000:]
    assert set(spawned_users(served_log)) == {"ModelUser"}
    with (tmp_path / "models_stats.csv").open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["Name"] != "Aggregated"]
    assert all(row["Failure Count"] == "0" for row in rows)
    assert {"/v1/models/qa:predict", "/v1/models/similarity:predict"} <= {r["Name"] for r in rows}
