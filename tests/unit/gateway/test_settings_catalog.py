"""Settings from the environment, and the routed model names from models.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.gateway.catalog import configured_models, parse_model_names, routed_models
from serving.gateway.settings import GatewaySettings

CONFIG = """
model_config_list {
  config {
    name: "qa"   # the first model
    base_path: "/models/qa"
    model_platform: "tensorflow"
  }
  # config { name: "commented_out" }
  config { name: 'profile' base_path: "/models/profile" }
  config {
    name : "entailment"
    model_version_policy { all {} }
  }
}
"""


def test_settings_from_environment(monkeypatch) -> None:
    monkeypatch.setenv("GATEWAY_BACKEND", "rest")
    monkeypatch.setenv("GATEWAY_MAX_BODY_BYTES", "123")
    monkeypatch.setenv("GATEWAY_MODELS", '["qa"]')
    settings = GatewaySettings()
    assert (settings.backend, settings.max_body_bytes, settings.models) == ("rest", 123, ("qa",))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("qa,profile", ("qa", "profile")),
        (" qa , similarity ,", ("qa", "similarity")),
        ('["qa", "profile"]', ("qa", "profile")),
        ("", ()),
    ],
)
def test_models_filter_accepts_comma_list_and_json(monkeypatch, value, expected) -> None:
    monkeypatch.setenv("GATEWAY_MODELS", value)
    assert GatewaySettings().models == expected


def test_unset_models_filter_routes_every_configured_model(monkeypatch) -> None:
    monkeypatch.delenv("GATEWAY_MODELS", raising=False)
    assert GatewaySettings().models == ()


def test_models_config_names_in_order_comments_skipped() -> None:
    assert parse_model_names(CONFIG) == ["qa", "profile", "entailment"]


def test_routed_models_filter_and_fallback(tmp_path: Path) -> None:
    (tmp_path / "models.config").write_text(CONFIG)
    assert routed_models(tmp_path, ()) == ("qa", "profile", "entailment")
    assert routed_models(tmp_path, ("profile", "missing")) == ("profile",)
    (tmp_path / "models.config").unlink()
    (tmp_path / "qa" / "1").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    assert configured_models(tmp_path) == ["qa"]
    assert configured_models(tmp_path / "absent") == []
