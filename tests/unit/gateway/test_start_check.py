"""The model repo is judged once, at the gateway's start: a worker restarted later (by
GATEWAY_MAX_REQUESTS, a timeout, a SIGHUP reload) does not stop the gateway on it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.glogging import Logger

from serving.gateway import gunicorn_conf
from serving.gateway.catalog import ModelList, StartCheck, check_at_start

CONFIG = 'model_config_list { config { name: "qa" base_path: "/models/qa" } }\n'


@pytest.fixture(autouse=True)
def _fresh_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(StartCheck, "passed", False)  # as in a process gunicorn did not start


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
    server = SimpleNamespace(log=Logger(Config()))
    with pytest.raises(SystemExit) as stopped:
        gunicorn_conf.on_starting(server)
    assert stopped.value.code == 3  # gunicorn's own code for a worker that failed to boot
    assert not StartCheck.passed
    (tmp_path / "absent").mkdir()
    gunicorn_conf.on_starting(server)
    assert StartCheck.passed
