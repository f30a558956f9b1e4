"""``multihead-gateway --help`` names the gateway's settings, not only gunicorn's options."""

from __future__ import annotations

import pytest

from serving.gateway.command import main
from serving.gateway.settings import GatewaySettings
from serving.gateway.settings_messages import GUNICORN_VARIABLES


def test_help_lists_every_gateway_setting_before_gunicorns_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Found as a new user: the help was gunicorn's alone, with its defaults (127.0.0.1:8000,
    # 1 worker) where the gateway runs others, and no word of GATEWAY_MODEL_REPO.
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    words = set(out.replace(",", " ").split())
    names = {f"GATEWAY_{name.upper()}" for name in GatewaySettings.model_fields}
    assert names | GUNICORN_VARIABLES <= words
    assert out.index("GATEWAY_MODEL_REPO") < out.index("--workers")
    assert "are gunicorn's own, not the gateway's" in out


def test_a_wrong_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
