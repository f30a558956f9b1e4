"""scripts.wait_for (run_local.sh's readiness wait) says why a model is not ready."""

from __future__ import annotations

import pytest

from scripts.wait_for import main
from tests.support.model_server import ModelServerHandle


def test_a_timeout_prints_the_model_servers_word_on_each_waiting_model(
    model_server: ModelServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found as a new user: a model named in models.config that the server never loaded was
    # only "not ready after N s: ['model tickets']".
    argv = ["--model-server", model_server.rest_url, "--models", "qa,tickets", "--timeout", "0"]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "not ready after 0 s: ['model tickets']" in error
    assert "  model tickets: Could not find any versions of model tickets" in error
