"""models.config is read by one schema on both sides: a field TF Serving does not know is an
error for the gateway as for the model server (serving/protos/models_config.proto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.gateway.catalog import ModelList
from serving.models_config import parse_model_names
from serving.protos import models_config_pb2

EVERY_FIELD = """model_config_list {
  config {
    name: "qa" base_path: "qa" model_platform: "tensorflow" model_type: TENSORFLOW
    model_version_policy { latest { num_versions: 2 } }
    version_labels { key: "stable" value: 1 }
    logging_config {
      log_collector_config { type: "file" filename_prefix: "/tmp/log" }
      sampling_config {
        sampling_rate: 0.5 attributes: 1
        per_task_sampling_configs { dc: "a" task_index: 0 sampling_rate: 0.1 }
      }
    }
  }
  config { name: "nli" base_path: "nli" model_version_policy { specific { versions: 1 } } }
  config { name: "sim" base_path: "sim" model_version_policy { all {} } }
}
"""


def _shape(descriptor: Any, seen: set[str]) -> dict[str, Any]:
    """A message's fields by name (number, type, label, oneof, nested shape), without package
    names: what text format reads."""
    fields: dict[str, Any] = {}
    for field in descriptor.fields:
        nested: Any = None
        if field.message_type is not None and field.message_type.full_name not in seen:
            seen.add(field.message_type.full_name)
            nested = _shape(field.message_type, seen)
        if field.enum_type is not None:
            nested = sorted((value.name, value.number) for value in field.enum_type.values)
        oneof = field.containing_oneof
        fields[field.name] = (
            field.number,
            field.type,
            field.is_repeated,
            oneof.name if oneof is not None and not oneof.name.startswith("_") else None,
            nested,
        )
    return fields


def test_the_schema_is_tf_servings() -> None:
    # The official messages come with tensorflow-serving-api (dev install); the gateway's
    # image has no such package, hence the project's own copy.
    official = pytest.importorskip("tensorflow_serving.config.model_server_config_pb2")
    ours = _shape(models_config_pb2.ModelServerConfig.DESCRIPTOR, set())
    assert ours == _shape(official.ModelServerConfig.DESCRIPTOR, set())


def test_a_config_using_every_field_is_read_alike(tmp_path: Path) -> None:
    from serving.modelserver.config import parse_model_config

    assert parse_model_names(EVERY_FIELD) == ["qa", "nli", "sim"]
    assert [model.name for model in parse_model_config(EVERY_FIELD, tmp_path)] == [
        "qa",
        "nli",
        "sim",
    ]


@pytest.mark.parametrize(
    "typo",
    [
        'config { name: "qa" base_path: "qa" model_version_polcy { latest { num_versions: 2 } } }',
        'config { name: "qa" base_path: "qa" model_version_policy { lates { num_versions: 2 } } }',
        'config { nam: "qa" base_path: "qa" }',
        'configs { name: "qa" base_path: "qa" }',
    ],
    ids=["field", "nested-field", "name", "list"],
)
def test_a_misspelt_field_is_refused_by_the_gateway_as_by_the_model_server(
    tmp_path: Path, typo: str
) -> None:
    # Found as a new user editing models.config (num_versions: 2, as the gateway README
    # advises): the gateway skipped the unknown field and routed the config's new model, the
    # model server refused the config and kept its last one, and every request was a 503
    # "the model server has not loaded model ..." with no word about the typo.
    from serving.modelserver.config import parse_model_config

    text = f"model_config_list {{ {typo} }}"
    with pytest.raises(ValueError, match="no field named"):
        parse_model_config(text, tmp_path)
    with pytest.raises(ValueError, match="no field named"):
        parse_model_names(text)


def test_a_misspelt_edit_keeps_the_last_good_model_list(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text('model_config_list { config { name: "qa" base_path: "qa" } }')
    models = ModelList(tmp_path, ())
    config.write_text(
        'model_config_list { config { name: "qa" base_path: "qa" }\n'
        '  config { name: "tickets" base_path: "tickets" model_version_polcy { all {} } } }'
    )
    assert models.reload() == ("qa",)
