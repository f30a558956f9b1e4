"""scripts/: the local run script parses and refuses taken ports; the readiness waiter gives
up when it should."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import free_ports, wait_for

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


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other server listens on (127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_free_ports_names_a_taken_port(listening: int, capsys: pytest.CaptureFixture[str]) -> None:
    spare = free_port()
    assert free_ports.taken("127.0.0.1", [spare, listening]) == [listening]
    assert free_ports.main(["--host", "127.0.0.1", str(spare), str(listening)]) == 1
    assert f"in use on 127.0.0.1: port {listening} (" in capsys.readouterr().err
    assert free_ports.main(["--host", "127.0.0.1", str(spare)]) == 0


def test_run_local_refuses_a_taken_port_before_starting_anything(
    listening: int, tmp_path: Path
) -> None:
    # A second `make run` beside a first one printed "Ready" (the first one's servers answered
    # its readiness checks) while its own model server and gateway failed to bind.
    config = 'model_config_list { config { name: "qa" base_path: "qa" } }\n'
    (tmp_path / "models.config").write_text(config)
    env = {
        **os.environ,
        "MODEL_REPO": str(tmp_path),
        "VENV": str(Path(sys.executable).parent.parent),
        "GATEWAY_PORT": str(listening),
        "GRPC_PORT": str(free_port()),
        "REST_PORT": str(free_port()),
        "READY_TIMEOUT": "5",
    }
    script = ROOT / "scripts" / "run_local.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert f"in use on 127.0.0.1: port {listening} (" in done.stderr
    assert "starting the model server" not in done.stdout


@pytest.mark.parametrize("value", ["99999", "abc", "0"])
def test_free_ports_refuses_a_port_that_is_none(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: GRPC_PORT=99999 in run_local.sh was an OverflowError traceback.
    with pytest.raises(SystemExit) as stopped:
        free_ports.main(["--host", "127.0.0.1", value])
    assert stopped.value.code == 2
    assert f"must be 1 to 65535, got '{value}'" in capsys.readouterr().err


def test_free_ports_names_a_host_it_cannot_listen_on(capsys: pytest.CaptureFixture[str]) -> None:
    # An address of no interface here (TEST-NET-1, RFC 5737) was an OSError traceback.
    assert free_ports.main(["--host", "192.0.2.1", str(free_port())]) == 2
    assert capsys.readouterr().err.startswith("cannot listen on HOST '192.0.2.1': ")


def test_run_local_names_a_models_folder_given_as_the_repo(tmp_path: Path) -> None:
    # MODEL_REPO=model_repo/qa was told "no .../models.config: train models first".
    (tmp_path / "qa" / "1").mkdir(parents=True)
    env = {
        **os.environ,
        "MODEL_REPO": str(tmp_path / "qa"),
        "VENV": str(Path(sys.executable).parent.parent),
    }
    script = ROOT / "scripts" / "run_local.sh"
    done = subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"MODEL_REPO: {str(tmp_path / 'qa')!r} is a model's folder")
