"""gunicorn_conf.py's gRPC setting: grpcio's client without its EventEngine (issue 9).

The figures behind it are in loadtests/README.md (rounds 7 and 16); these tests keep the setting in
force: set before any worker imports grpcio, a value the operator chose kept, and the
experiment still known to the pinned grpcio (a release that drops it logs "Unknown
experiment" and quietly goes back to two thread hops per answer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from serving.gateway.command import CONFIG
from serving.gateway.launcher import PROJECT_ROOT

_READ_CONFIG = f"""
import json, os, runpy, sys
settings = runpy.run_path({str(CONFIG)!r})
import serving.gateway.workers  # the worker class gunicorn's master loads after the config
print(json.dumps({{
    "experiments": os.environ.get("GRPC_EXPERIMENTS"),
    "default": settings["GRPC_EXPERIMENTS_DEFAULT"],
    "grpc_imported": any(name == "grpc" or name.startswith("grpc.") for name in sys.modules),
}}))
"""


def _read_config(**extra: str) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    environment.update(extra, PYTHONPATH=str(PROJECT_ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _READ_CONFIG],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_config_turns_the_event_engine_client_off_before_grpc_is_imported() -> None:
    found = _read_config()
    assert found["experiments"] == "-event_engine_client" == found["default"]
    # grpcio reads GRPC_EXPERIMENTS once, at its first import: that must come later (workers).
    assert found["grpc_imported"] is False


def test_an_operators_grpc_experiments_are_kept() -> None:
    found = _read_config(GRPC_EXPERIMENTS="-some_other_experiment")
    assert found["experiments"] == "-some_other_experiment"
    # Empty: grpcio's own defaults, as the gateway README tells operators.
    assert _read_config(GRPC_EXPERIMENTS="")["experiments"] == ""


def _channel_stderr(experiments: str) -> str:
    code = (
        "import grpc\n"
        "channel = grpc.insecure_channel('127.0.0.1:9')\n"
        "try:\n"
        "    grpc.channel_ready_future(channel).result(timeout=0.2)\n"
        "except grpc.FutureTimeoutError:\n"
        "    pass\n"
        "channel.close()\n"
    )
    environment = {**os.environ, "GRPC_EXPERIMENTS": experiments}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_pinned_grpcio_knows_the_experiment() -> None:
    default = _read_config()["default"]
    assert isinstance(default, str)
    assert "Unknown experiment" not in _channel_stderr(default)
    # The check can fail: grpcio reports a name it does not know.
    assert "Unknown experiment" in _channel_stderr("-no_such_experiment_here")
