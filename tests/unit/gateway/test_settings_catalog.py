"""Settings from the environment, and the routed model names from models.config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.gateway.catalog import (
    ModelList,
    configured_models,
    parse_model_names,
    routed_models,
)
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
    name : "entailment" base_path: "entailment"
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


def test_a_folder_not_named_in_utf8_names_no_model(tmp_path: Path) -> None:
    # Found by the adversarial repo pass 5: without a models.config, a folder named by bytes
    # that are not UTF-8 (read as 'm\udcff') was listed as a model; asking the model server
    # for it raised UnicodeEncodeError, and /readyz, /v1/models and every poll failed (500).
    (tmp_path / "qa" / "1").mkdir(parents=True)
    os.makedirs(os.fsencode(tmp_path) + b"/m\xff/1")
    assert configured_models(tmp_path) == ["qa"]
    assert ModelList(tmp_path, ()).models == ("qa",)


@pytest.mark.parametrize(
    "text",
    [
        CONFIG[: CONFIG.index("base_path")] + "base_pa",  # a write cut in the middle
        CONFIG[: CONFIG.rindex("}")],  # the closing brace not written yet
        CONFIG + "}",
        'model_config_list { config { name: "qa } }',
    ],
)
def test_a_models_config_that_is_no_text_proto_is_refused(tmp_path: Path, text: str) -> None:
    # Found by the new-user trial: the names of a half-written file were routed (the others
    # were then 404 "unknown model" while the model server kept serving them).
    with pytest.raises(ValueError, match="not a text-format ModelServerConfig"):
        parse_model_names(text)
    (tmp_path / "models.config").write_text(text)
    with pytest.raises(ValueError):
        routed_models(tmp_path, ())


def test_a_models_config_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    (tmp_path / "models.config").write_bytes(b'model_config_list { config { name: "\xff" } }')
    with pytest.raises(ValueError):
        routed_models(tmp_path, ())


def test_models_config_fields_the_gateway_does_not_read_are_skipped() -> None:
    text = """model_config_list: {
      config: { name: 'qa', base_path: '/m/qa', model_platform: "tensorflow",
                version_labels { key: 'stable' value: 1 }
                model_version_policy { specific { versions: 1 versions: 2 } } }
    }"""
    assert parse_model_names(text) == ["qa"]
    assert parse_model_names("# no models yet\n") == []


@pytest.mark.parametrize(
    "entries",
    [
        'config { name: "qa" base_path: "qa" } config { name: "qa" base_path: "answers" }',
        'config { name: "qa" }',
        'config { base_path: "qa" }',
        'config { name: "qa" base_path: "qa" model_platform: "onnx" }',
    ],
    ids=["duplicate", "no-base-path", "no-name", "platform"],
)
def test_a_model_list_the_model_server_refuses_is_refused_here_too(
    tmp_path: Path, entries: str
) -> None:
    # Found by the adversarial repo pass: the gateway routed the names of a config the model
    # server refused (it keeps its last good config), and read the first of two entries of
    # one name: models the server did not serve, from folders it did not read.
    from serving.modelserver.config import parse_model_config

    text = f"model_config_list {{ {entries} }}"
    with pytest.raises(ValueError):
        parse_model_config(text, tmp_path)
    with pytest.raises(ValueError):
        parse_model_names(text)


def test_a_custom_model_config_is_refused_as_the_model_server_refuses_it(tmp_path: Path) -> None:
    from serving.modelserver.config import parse_model_config

    text = "custom_model_config { }"
    with pytest.raises(ValueError, match="custom_model_config"):
        parse_model_config(text, tmp_path)
    with pytest.raises(ValueError, match="custom_model_config"):
        parse_model_names(text)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("absent", "is not a folder"),
        ("repo/qa", "is a model's folder"),
        ("repo/qa/1", "inside the model version folder"),
    ],
)
def test_a_model_repo_the_gateway_cannot_serve_from_stops_it_at_start(
    tmp_path: Path, where: str, message: str
) -> None:
    # Found as a new user: GATEWAY_MODEL_REPO with a typo (or the default `model_repo` from
    # another folder) started a gateway that was ready with no model and logged nothing;
    # every request was a 404 "unknown model".
    from serving.gateway.catalog import ModelList

    (tmp_path / "repo" / "qa" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "qa" / "1" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ValueError, match=message):
        ModelList(tmp_path / where, ())


def test_a_model_repo_without_models_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from serving.gateway.catalog import ModelList

    assert ModelList(tmp_path, ()).models == ()
    assert "routes no model" in caplog.text
