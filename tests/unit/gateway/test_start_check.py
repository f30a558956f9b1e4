"""The model repo is judged once, at the gateway's start: a worker restarted later (by
GATEWAY_MAX_REQUESTS, a timeout, a SIGHUP reload) does not stop the gateway on it."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from serving.gateway import gunicorn_conf
from serving.gateway.catalog import ModelList, StartCheck, check_at_start
from serving.gateway.gunicorn_values import ConfigValues

CONFIG = 'model_config_list { config { name: "qa" base_path: "/models/qa" } }\n'


@pytest.fixture(autouse=True)
def _fresh_start(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setattr(StartCheck, "passed", False)  # as in a process gunicorn did not start
    # on_starting makes (and exports) a metrics folder when none is set: a folder of the test's.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path_factory.mktemp("metrics")))


def test_without_a_metrics_folder_the_master_makes_one_and_removes_it_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unset, each worker counted alone and /metrics answered one worker's counts per scrape.
    monkeypatch.setenv("GATEWAY_MODEL_REPO", str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # as unset (compose's ${VAR:-})
    server = SimpleNamespace(log=logging.getLogger("test.gunicorn"), cfg=Config())
    gunicorn_conf.on_starting(server)
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])  # the workers inherit it
    assert folder.is_dir() and getattr(server, gunicorn_conf.MADE_FOLDER) == str(folder)
    gunicorn_conf.on_exit(server)
    assert not folder.exists()


def test_a_worker_restarted_while_models_config_is_rewritten_keeps_the_gateway_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Seen: GATEWAY_MAX_REQUESTS restarted a worker while models.config was half written;
    # its boot raised, and gunicorn's master halted the whole gateway ("Worker failed to
    # boot", exit 3).
    (tmp_path / "models.config").write_text(CONFIG)
    check_at_start(tmp_path, ())
    assert StartCheck.passed
    (tmp_path / "models.config").write_text(CONFIG[:40])  # a rewrite under way
    with caplog.at_level(logging.ERROR):
        restarted = ModelList(tmp_path, ())
    assert restarted.models == ()
    assert "routing no model until a poll reads it" in caplog.text
    (tmp_path / "models.config").write_text(CONFIG)
    assert restarted.reload() == ("qa",)
    shutil.rmtree(tmp_path)  # the repo itself gone for a moment
    assert ModelList(tmp_path, ()).models == ()


def test_a_repo_the_gateway_cannot_serve_from_still_stops_it_at_start(tmp_path: Path) -> None:
    (tmp_path / "models.config").write_text(CONFIG[:40])
    with pytest.raises(ValueError, match="ModelServerConfig"):
        check_at_start(tmp_path, ())
    assert not StartCheck.passed
    with pytest.raises(ValueError, match="ModelServerConfig"):
        ModelList(tmp_path, ())


def test_gunicorns_master_stops_before_any_worker_on_a_repo_it_cannot_serve_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_MODEL_REPO", str(tmp_path / "absent"))
    server = SimpleNamespace(log=Logger(Config()), cfg=Config())
    with pytest.raises(SystemExit) as stopped:
        gunicorn_conf.on_starting(server)
    assert stopped.value.code == 3  # gunicorn's own code for a worker that failed to boot
    assert not StartCheck.passed
    (tmp_path / "absent").mkdir()
    gunicorn_conf.on_starting(server)
    assert StartCheck.passed


def test_invalid_settings_stop_the_master_with_one_line_per_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Found as a new user: GATEWAY_BACKEND=foo was a pydantic traceback in every worker, then
    # gunicorn's master halted with a HaltServer traceback of its own.
    monkeypatch.setenv("GATEWAY_BACKEND", "foo")
    monkeypatch.setenv("GATEWAY_MAX_TOP_K", "-1")
    monkeypatch.setenv("GATEWAY_API_KEYS", json.dumps([1]))  # never echoed: a key
    server = SimpleNamespace(log=logging.getLogger("test.gunicorn"), cfg=Config())
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        gunicorn_conf.on_starting(server)
    assert stopped.value.code == 3
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("the gateway cannot start: ")
    assert "GATEWAY_API_KEYS: Input should be" in message
    assert "GATEWAY_BACKEND='foo': Input should be 'grpc', 'rest' or 'local'" in message
    assert "GATEWAY_MAX_TOP_K='-1': Input should be greater than 0" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("GATEWAY_WORKERS", "0"), ("GATEWAY_THREADS", "x"), ("GATEWAY_WORKERS", "--4")],
)
def test_a_bad_gunicorn_number_is_one_line_and_exit_2(name: str, value: str) -> None:
    # GATEWAY_WORKERS=0 started a master with no worker, listening and never answering;
    # GATEWAY_WORKERS=abc was gunicorn's "Failed to read config file" and a traceback.
    environment = os.environ | {name: value, "GATEWAY_PORT": "1"}
    command = [sys.executable, "-m", "serving.gateway.command"]
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().endswith(f"{name} must be a whole number >= 1, got {value!r}")
    assert "Traceback" not in run.stderr


def test_every_bad_gunicorn_setting_is_one_line_and_exit_2() -> None:
    # Found by the adversarial pass breaknew6b: GATEWAY_WORKERS=--4 was gunicorn's "Failed
    # to read config file" and a traceback, GATEWAY_PORT=99999 an OverflowError traceback
    # from the master, GATEWAY_WORKER_CLASS=foo "class uri 'foo' invalid or not found" and
    # a traceback (exit 1); and only the first bad number was named.
    bad = {"GATEWAY_WORKERS": "--4", "GATEWAY_PORT": "99999", "GATEWAY_WORKER_CLASS": "foo"}
    command = [sys.executable, "-m", "serving.gateway.command"]
    environment = os.environ | bad
    run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-3:] == [
        "GATEWAY_PORT must be a whole number from 0 to 65535, got '99999'",
        "GATEWAY_WORKERS must be a whole number >= 1, got '--4'",
        "GATEWAY_WORKER_CLASS must be gevent or gthread or a gunicorn worker class (its "
        "import path), got 'foo'",
    ]
    assert "Traceback" not in run.stderr


def test_gunicorns_own_workers_option_of_0_stops_the_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # multihead-gateway --workers 0 overrides GATEWAY_WORKERS, and gunicorn accepts 0.
    monkeypatch.setenv("GATEWAY_MODEL_REPO", str(tmp_path))
    config = Config()
    config.set("workers", 0)
    server = SimpleNamespace(log=logging.getLogger("test.gunicorn"), cfg=config)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        gunicorn_conf.on_starting(server)
    assert stopped.value.code == 2
    assert "--workers (GATEWAY_WORKERS) must be >= 1, got 0" in caplog.text


@pytest.mark.parametrize("bind", ["127.0.0.1:99999", "127.0.0.1:-5"])
def test_gunicorns_own_bind_option_with_a_port_past_65535_stops_the_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, bind: str
) -> None:
    # Found by the new-user trial (newuser9): multihead-gateway --bind 127.0.0.1:99999 (which
    # overrides GATEWAY_PORT's check) was an OverflowError traceback from gunicorn's master.
    monkeypatch.setenv("GATEWAY_MODEL_REPO", str(tmp_path))
    config = Config()
    config.set("bind", [bind])
    server = SimpleNamespace(log=logging.getLogger("test.gunicorn"), cfg=config)
    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit) as stopped:
        gunicorn_conf.on_starting(server)
    assert stopped.value.code == 2
    assert f"--bind port {bind.rsplit(':', 1)[1]} is not 0-65535" in caplog.text


def test_a_bad_bind_host_log_level_or_cpu_affinity_is_one_line_each_and_exit_2() -> None:
    # GATEWAY_BIND_HOST=127.0.0.1:80 listened on port 80, not GATEWAY_PORT; an unknown
    # GATEWAY_LOG_LEVEL was taken by gunicorn (as info) and failed each worker's boot with a
    # traceback; GATEWAY_CPU_AFFINITY=yes was "Failed to read config file" and a traceback.
    bad = {
        "GATEWAY_BIND_HOST": "127.0.0.1:80",
        "GATEWAY_LOG_LEVEL": "verbose",
        "GATEWAY_CPU_AFFINITY": "yes",
    }
    command = [sys.executable, "-m", "serving.gateway.command"]
    run = subprocess.run(command, env=os.environ | bad, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-3:] == [
        "GATEWAY_BIND_HOST must be a host name or an IP address without a port (GATEWAY_PORT "
        "sets it), got '127.0.0.1:80'",
        "GATEWAY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL (any case), "
        "got 'verbose'",
        "GATEWAY_CPU_AFFINITY must be one of off, per-worker, not 'yes'",
    ]
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("host", "bound"),
    [("::", "[::]"), ("::1", "[::1]"), ("[::1]", "[::1]"), ("0.0.0.0", "0.0.0.0"), ("gw", "gw")],
)
def test_a_bind_host_is_put_in_gunicorns_bind_as_it_reads_it(host: str, bound: str) -> None:
    # gunicorn splits bind at its last colon: "::" stopped it with "'' is not a valid port
    # number", naming no setting.
    assert ConfigValues().bind_host(host) == bound
