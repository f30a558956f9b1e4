"""An export (and ``--model-repo``) into a model's folder or a version folder is refused.

Found as a new user: ``export_for_serving(..., name="tickets", repo=Path("model_repo/qa"))``
wrote ``model_repo/qa/tickets/1`` and a second ``models.config`` inside the qa model's
folder, printed the path and returned: no server reads either (a version folder is named by
digits; TF Serving and the local model server skip ``tickets``), so the model was never
served and nothing said why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from serving.contract import repo_layout_problem
from serving.spec import CategoricalHead, ServingSpec, TextInput
from training.cli import main
from training.export import export_for_serving


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A model repo as training leaves it: models.config and qa/1 holding a SavedModel."""
    root = tmp_path / "model_repo"
    (root / "qa" / "1" / "variables").mkdir(parents=True)
    (root / "qa" / "1" / "saved_model.pb").write_bytes(b"")
    (root / "models.config").write_text(
        'model_config_list { config { name: "qa" base_path: "qa" } }'
    )
    return root


def spec() -> ServingSpec:
    return ServingSpec(
        title="t",
        inputs=[TextInput(field="text", tensor="text_ids", max_tokens=8, vocab_size=10)],
        heads=[CategoricalHead(output="probs", field="label", labels=["a", "b"])],
        example={"text": "hello"},
    )


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("qa", "is a model's folder"),
        ("qa/1", "inside the model version folder"),
        ("qa/1/variables/new", "inside the model version folder"),
    ],
)
def test_export_into_a_model_or_version_folder_is_refused(
    repo: Path, tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(ValueError, match=message):
        # Refused before the model or tokenizers are looked at: nothing is written.
        export_for_serving(
            None,
            spec(),
            {"tokenizer.json": tmp_path / "tokenizer.json"},
            name="t",
            repo=repo / where,
        )
    assert not (repo / where / "t").exists()
    assert sorted(path.name for path in (repo / "qa").iterdir()) == ["1"]


def test_a_configured_models_folder_without_versions_yet_is_refused(repo: Path) -> None:
    (repo / "nli").mkdir()
    (repo / "models.config").write_text(
        'model_config_list { config { name: "qa" base_path: "qa" }'
        ' config { name: "nli" base_path: "nli" } }'
    )
    assert "is the folder of model 'nli'" in (repo_layout_problem(repo / "nli") or "")


@pytest.mark.parametrize("where", ["", "new_repo", "new_repo/deeper"])
def test_a_repo_or_a_new_folder_is_fine(repo: Path, where: str) -> None:
    assert repo_layout_problem(repo / where if where else repo) is None


def test_the_training_cli_refuses_it_before_training(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["train", "qa", "--model-repo", str(repo / "qa"), "--data-dir", str(tmp_path)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "argument --model-repo:" in error and "is a model's folder" in error


@pytest.mark.parametrize("base_path", ["2024", "/models/2024", "./2024"])
def test_a_model_named_by_digits_is_no_version_folder_of_its_repo(
    repo: Path, base_path: str
) -> None:
    # export's MODEL_NAME_PATTERN (and TF Serving) allow "2024": its folder in the repo was
    # taken for a version folder, so every later export to the repo, and the gateway's start,
    # were refused ("is a model's folder (it holds version folders [2024])").
    (repo / "2024" / "1").mkdir(parents=True)
    (repo / "2024" / "1" / "saved_model.pb").write_bytes(b"")
    (repo / "models.config").write_text(
        'model_config_list { config { name: "qa" base_path: "qa" }'
        f' config {{ name: "2024" base_path: "{base_path}" }} }}'
    )
    assert repo_layout_problem(repo) is None
    # A digit folder its config does not name is still a version: a model's folder.
    (repo / "7").mkdir()
    (repo / "7" / "saved_model.pb").write_bytes(b"")
    assert "is a model's folder (it holds version folders [7])" in (repo_layout_problem(repo) or "")
