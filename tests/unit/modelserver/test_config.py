"""Parsing TF Serving's text config files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.models_config import EmptyConfigError, parse_model_names
from serving.modelserver.config import (
    BatchingSettings,
    VersionPolicy,
    load_model_config,
    parse_batching_parameters,
    parse_model_config,
    parse_monitoring_config,
)
from training.export import BATCHING_PARAMETERS, MONITORING_CONFIG, render_models_config

CONFIG = """
model_config_list {
  config { name: "qa" base_path: "qa" model_platform: "tensorflow" }
  config {
    name: "profile"
    base_path: "/abs/profile"
    model_version_policy { all {} }
  }
  config {
    name: "similarity"
    base_path: "sim"
    model_version_policy { specific { versions: 1 versions: 3 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 3 }
  }
}
"""


def test_model_config_list():
    qa, profile, similarity = parse_model_config(CONFIG, Path("/repo"))
    assert qa.name == "qa"
    assert qa.base_path == Path("/repo/qa")  # relative paths: against the config's folder
    assert qa.policy == VersionPolicy()
    assert profile.base_path == Path("/abs/profile")
    assert profile.policy.kind == "all"
    assert similarity.policy == VersionPolicy(kind="specific", versions=(1, 3))
    assert similarity.label_map() == {"stable": 1, "canary": 3}


def test_exported_config_parses():
    models = parse_model_config(render_models_config(["qa", "profile"], 2), Path("/r"))
    assert [model.name for model in models] == ["qa", "profile"]
    assert models[0].policy == VersionPolicy(num_versions=2)


@pytest.mark.parametrize(
    ("policy", "available", "expected"),
    [
        (VersionPolicy(), [1, 2, 3], {3}),
        (VersionPolicy(num_versions=2), [3, 1, 2], {2, 3}),
        (VersionPolicy(kind="all"), [1, 2], {1, 2}),
        (VersionPolicy(kind="specific", versions=(1, 5)), [1, 2, 3], {1}),
        (VersionPolicy(), [], set()),
    ],
)
def test_version_policy(policy, available, expected):
    assert policy.select(available) == expected


@pytest.mark.parametrize(
    "text",
    [
        'model_config_list { config { name: "a" base_path: "a" }'
        ' config { name: "a" base_path: "b" } }',
        'model_config_list { config { name: "a" } }',
        'model_config_list { config { name: "a" base_path: "a" model_platform: "onnx" } }',
        "model_config_list { nonsense: 1 }",
    ],
    ids=["duplicate", "no-base-path", "platform", "unknown-field"],
)
def test_bad_model_config(text):
    with pytest.raises(Exception):  # noqa: B017 - ValueError or text_format.ParseError
        parse_model_config(text, Path("/r"))


@pytest.mark.parametrize("text", ["", "  \n", "# written next\n"])
def test_an_empty_model_config_is_no_models_at_start_and_no_change_on_a_reread(
    text: str, tmp_path: Path
) -> None:
    # TF Serving's ServerCore::ReloadConfig: "Taking no action for empty config" (a file
    # truncated to be rewritten); an explicit empty list is a config without models.
    config = tmp_path / "models.config"
    config.write_text(text)
    assert load_model_config(config) == [] and parse_model_names(text) == []
    with pytest.raises(EmptyConfigError):
        load_model_config(config, empty_ok=False)
    with pytest.raises(EmptyConfigError):
        parse_model_names(text, empty_ok=False)
    config.write_text("model_config_list {}")
    assert load_model_config(config, empty_ok=False) == []
    assert parse_model_names("model_config_list {}", empty_ok=False) == []


def test_batching_parameters():
    settings = parse_batching_parameters(BATCHING_PARAMETERS + 'thread_pool_name { value: "x" }\n')
    assert settings == BatchingSettings(
        max_batch_size=32,
        batch_timeout_micros=0,
        max_enqueued_batches=64,
        num_batch_threads=2,
        pad_variable_length_inputs=True,
    )


def test_batching_defaults():
    assert parse_batching_parameters("") == BatchingSettings()


def test_monitoring_config():
    settings = parse_monitoring_config(MONITORING_CONFIG)
    assert settings.enable
    assert settings.path == "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_batching_parameters, "max_batch_sise { value: 8 }\nnum_batch_threads { value: 3 }"),
        (parse_monitoring_config, "prometheus_config { enable: true pth: '/m' }"),
    ],
    ids=["batching", "monitoring"],
)
def test_a_field_this_server_does_not_know_is_logged_not_silently_skipped(
    caplog: pytest.LogCaptureFixture, parse: Any, text: str
) -> None:
    # Found with the models.config typo a new user made: these two files skipped any field
    # they do not declare without a word, so a misspelt max_batch_size kept its default.
    parse(text)
    misspelt = "max_batch_sise" if "sise" in text else "pth"
    assert f'has no field named "{misspelt}"' in caplog.text and "misspelt?" in caplog.text
