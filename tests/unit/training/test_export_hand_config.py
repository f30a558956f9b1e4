"""export_for_serving and a hand-edited models.config: appended to, never broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving import contract
from tests.unit.training.test_export_for_serving import make_spec
from training.export import ModelConfigError, export_for_serving
from training.model_config import configured_models
from training.tiny_models import spec_model

USER_CONFIG = """# my own serving config
model_config_list {
  config {
    name: "other"  # hand-made
    base_path: "/models/other"
    model_platform: "tensorflow"
    model_version_policy { all {} }
  }
}  # end
"""


def test_appends_a_new_model_to_a_hand_edited_config(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    (tmp_path / contract.MODELS_CONFIG_FILE).write_text(USER_CONFIG)
    spec = make_spec(vocab)
    model = spec_model(spec)
    for _ in range(2):  # the second export finds the model registered: the file stays as it is
        export_for_serving(
            model, spec, {"tokenizer.json": tokenizer_path}, name="arrows", repo=tmp_path
        )
        text = (tmp_path / contract.MODELS_CONFIG_FILE).read_text()
        assert configured_models(text) == ["other", "arrows"]
        assert text.startswith(USER_CONFIG[: USER_CONFIG.index("}  # end")])
        assert text.endswith("}  # end\n")
    assert sorted(path.name for path in (tmp_path / "arrows").iterdir()) == ["1", "2"]


def test_a_broken_hand_edited_config_stops_the_export_first(
    tmp_path: Path, tokenizer_path: Path, vocab: int
) -> None:
    (tmp_path / contract.MODELS_CONFIG_FILE).write_text("model_config_list { config { name: ")
    spec = make_spec(vocab)
    with pytest.raises(ModelConfigError):
        export_for_serving(
            spec_model(spec), spec, {"tokenizer.json": tokenizer_path}, name="d", repo=tmp_path
        )
    assert not (tmp_path / "d").exists()
