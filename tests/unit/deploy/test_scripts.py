"""scripts/: the local run script parses, and the readiness waiter gives up when it should."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import wait_for

ROOT = Path(__file__).resolve().parents[3]


def test_run_local_script_parses() -> None:
    script = ROOT / "scripts" / "run_local.sh"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_wait_for_times_out_on_a_closed_port() -> None:
    url = "http://127.0.0.1:9/healthz"  # the discard port: nothing listens
    assert wait_for.main(["--url", url, "--timeout", "0.2"]) == 1


def test_wait_for_stops_when_the_watched_process_died() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    arguments = ["--url", "http://127.0.0.1:9/", "--pid", str(finished.pid), "--timeout", "30"]
    assert wait_for.main(arguments) == 1


def test_wait_for_with_nothing_to_wait_for_is_ready() -> None:
    assert wait_for.main(["--timeout", "0"]) == 0
