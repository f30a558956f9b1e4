"""A model's folder is its models.config ``base_path``, read as TF Serving reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.contract import MODELS_CONFIG_FILE, holds_saved_model, model_dir, version_dirs


def _config(repo: Path, *entries: tuple[str, str]) -> None:
    blocks = "".join(
        f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n'
        for name, base in entries
    )
    (repo / MODELS_CONFIG_FILE).write_text(f"model_config_list {{\n{blocks}}}\n")


def test_a_relative_base_path_is_read_from_the_configs_folder(tmp_path: Path) -> None:
    _config(tmp_path, ("qa", "qa_bidaf"), ("profile", "nested/profile"), ("nli", "nli"))
    assert model_dir(tmp_path, "qa") == tmp_path / "qa_bidaf"
    assert model_dir(tmp_path, "profile") == tmp_path / "nested" / "profile"
    assert model_dir(tmp_path, "nli") == tmp_path / "nli"


def test_an_absolute_base_path(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "qa_v2"
    elsewhere.mkdir(parents=True)
    repo = tmp_path / "repo"
    repo.mkdir()
    _config(repo, ("qa", str(elsewhere)), ("profile", "/models/profile_v3"))
    assert model_dir(repo, "qa") == elsewhere  # a folder here too
    # the model server's path, not one here: the same volume mounted at the repo
    assert model_dir(repo, "profile") == repo / "profile_v3"


@pytest.mark.parametrize("config", [None, "model_config_list { config { name: ", ""])
def test_without_a_readable_entry_the_folder_is_the_models_name(tmp_path, config) -> None:
    if config is not None:
        (tmp_path / MODELS_CONFIG_FILE).write_text(config)
    assert model_dir(tmp_path, "qa") == tmp_path / "qa"


@pytest.mark.parametrize("created", [("7", "07", "007"), ("007", "07", "7")])
def test_two_folders_of_one_version_are_read_as_the_model_server_loads_them(
    tmp_path: Path, created: tuple[str, ...]
) -> None:
    # Found by the adversarial repo pass: the first folder the listing gave won, so the
    # gateway could read 007's spec and tokenizer while the model server ran 7's model.
    # The server loads a folder holding a SavedModel, the shorter name first.
    for name in created:
        (tmp_path / name).mkdir()
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert version_dirs(tmp_path) == {7: tmp_path / "7"}
    (tmp_path / "7" / "saved_model.pb").unlink()  # 7 is still being written: 07 is served
    assert version_dirs(tmp_path) == {7: tmp_path / "07"}
    assert holds_saved_model(tmp_path / "07") and not holds_saved_model(tmp_path / "7")


def test_a_config_refused_or_being_written_is_read_as_the_last_good_one(tmp_path: Path) -> None:
    # Found by the adversarial repo pass: a config the model server refuses (a model listed
    # twice) or one cut mid-write sent the gateway to repo/<name> for the model's files, while
    # the server kept serving the last good config's base_path.
    _config(tmp_path, ("qa", "answers"))
    assert model_dir(tmp_path, "qa") == tmp_path / "answers"
    _config(tmp_path, ("qa", "other"), ("qa", "answers"))
    assert model_dir(tmp_path, "qa") == tmp_path / "answers"
    (tmp_path / MODELS_CONFIG_FILE).write_text('model_config_list { config { name: "qa" ba')
    assert model_dir(tmp_path, "qa") == tmp_path / "answers"
    _config(tmp_path, ("qa", "other"))
    assert model_dir(tmp_path, "qa") == tmp_path / "other"
    # Found by the adversarial repo pass 3: a config emptied or removed for a moment (a
    # rewrite under way) sent the gateway to repo/<name>, while the server kept its config.
    (tmp_path / MODELS_CONFIG_FILE).write_text("")
    assert model_dir(tmp_path, "qa") == tmp_path / "other"
    (tmp_path / MODELS_CONFIG_FILE).unlink()
    assert model_dir(tmp_path, "qa") == tmp_path / "other"
    assert model_dir(tmp_path / "never", "qa") == tmp_path / "never" / "qa"  # training's layout
