"""models.config registration without TF: generated vs hand-edited configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving import contract
from training.model_config import (
    GENERATED_MARKER,
    ModelConfigError,
    configured_models,
    models_config_with,
)

HAND_EDITED = """model_config_list {
  config { name: "a}b" base_path: "/m/a" model_platform: "tensorflow" }  # odd } in a comment
}
# trailing comment with a brace }
"""


def write(repo: Path, text: str) -> None:
    (repo / contract.MODELS_CONFIG_FILE).write_text(text)


def test_generated_config_lists_every_model_folder_with_versions(tmp_path: Path) -> None:
    (tmp_path / "zeta" / "3").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden" / "1").mkdir(parents=True)
    text = models_config_with(tmp_path, "alpha")
    assert text.startswith(GENERATED_MARKER)
    assert configured_models(text) == ["alpha", "zeta"]


def test_hand_edited_config_gets_one_block_before_its_closing_brace(tmp_path: Path) -> None:
    write(tmp_path, HAND_EDITED)
    text = models_config_with(tmp_path, "new")
    assert configured_models(text) == ["a}b", "new"]
    assert text.startswith(HAND_EDITED.split("\n}\n")[0])  # the user's lines are kept as is
    assert text.endswith("}\n# trailing comment with a brace }\n")
    write(tmp_path, text)
    assert models_config_with(tmp_path, "new") == text  # registered once


def test_empty_hand_edited_config_gets_a_list(tmp_path: Path) -> None:
    write(tmp_path, "")
    assert configured_models(models_config_with(tmp_path, "new")) == ["new"]


@pytest.mark.parametrize("text", ["model_config_list { config { name: ", "nonsense"])
def test_broken_hand_edited_config_is_an_error(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    with pytest.raises(ModelConfigError):
        models_config_with(tmp_path, "new")
