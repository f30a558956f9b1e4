"""``scripts/run_local.sh`` (what ``make run`` starts) on a repo assembled by hand: a
``models.config`` with SavedModels, without the server configs ``training.export`` writes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serving import contract
from serving.processes import free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_a_repo_without_server_configs_starts(tiny_repo: Path, tmp_path: Path) -> None:
    # Found as a new user: the model server stopped with "--batching_parameters_file
    # .../batching_parameters.txt: No such file or directory", and run_local.sh with it.
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo, repo)
    for name in (contract.BATCHING_CONFIG_FILE, contract.MONITORING_CONFIG_FILE):
        (repo / name).unlink(missing_ok=True)
    env = {
        **os.environ,
        "MODEL_REPO": str(repo),
        "VENV": str(Path(sys.executable).parent.parent),
        "GATEWAY_PORT": str(free_port()),
        "GRPC_PORT": str(free_port()),
        "REST_PORT": str(free_port()),
        "READY_TIMEOUT": "120",
        "GATEWAY_WORKERS": "1",
    }
    script = ROOT / "scripts" / "run_local.sh"
    process = subprocess.Popen(
        ["bash", str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 240
        for line in process.stdout:  # ends when the script exits
            lines.append(line)
            if line.startswith("load test every served model") or time.monotonic() > deadline:
                break
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the script's trap stops both servers
        process.wait(timeout=60)
        if process.stdout is not None:  # closed, not left to the gc (a ResourceWarning)
            process.stdout.close()
    printed = "".join(lines)
    assert f"no {repo}/batching_parameters.txt: the model server's default batching" in printed
    assert "Ready. Try" in printed, printed[-3000:]
    assert "/v1/qa -H" in printed  # the tiny repo serves the aliased models
