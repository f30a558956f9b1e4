"""``loadtests/served_models.py``'s users at start, against a gateway that cannot list its
models: one error line per user and exit code 1, not a traceback per user."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LOCUST = Path(sys.executable).with_name("locust")


@pytest.mark.parametrize("models", [[], ["--models", "articles"]])
def test_an_unreachable_gateway_is_one_line_not_a_traceback(models: list[str]) -> None:
    # Found by the adversarial pass breaknew6b: each user's on_start raised requests'
    # JSONDecodeError (no answer, a 401 without --api-key) or locust's own error from .ok.
    command = [str(LOCUST), "-f", "loadtests/served_models.py", "--host", "http://127.0.0.1:9"]
    command += ["--headless", "-u", "1", "-r", "1", "-t", "1s", "--only-summary", *models]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "cannot load test: GET /v1/models" in run.stderr
    assert "got no answer" in run.stderr
