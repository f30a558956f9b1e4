"""Regression tests: bad paths and architectures, and missing data, are refused with exit 2.

Before, ``--data-dir`` naming nothing, a data dir without the task's files, ``--model-repo``
or ``--runs-dir`` naming a file, and an ``--arch`` the task lacks all ended in a traceback
(exit 1), the last three only after the data was read or the model trained.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.cli import main
from training.data.babi import read_babi
from training.data.blogs import read_blogs
from training.data.errors import DataError, MissingDataError
from training.data.sick import read_sick
from training.data.sts import load_pairs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of a CLI run that must stop in argparse with exit code 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", [["train", "qa"], ["train-all"], ["tune", "nli"]], ids=str)
def test_a_data_dir_that_does_not_exist_is_refused(command, tmp_path, capsys) -> None:
    error = run_error([*command, "--data-dir", str(tmp_path / "nowhere")], capsys)
    assert "argument --data-dir: no such file or directory" in error and "nowhere" in error


@pytest.mark.parametrize("option", ["--model-repo", "--runs-dir"])
@pytest.mark.parametrize("below", ["", "sub"])
def test_an_output_dir_that_is_a_file_is_refused(option, below, tmp_path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    target = tmp_path / "afile" / below
    error = run_error(["train", "qa", option, str(target), "--data-dir", str(tmp_path)], capsys)
    assert f"argument {option}:" in error and "afile' is not a directory" in error


def test_fetch_refuses_a_data_dir_that_is_a_file(tmp_path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    error = run_error(["fetch", "--verify-only", "--data-dir", str(tmp_path / "afile")], capsys)
    assert "argument --data-dir:" in error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "qa", "--arch", "tfidf"], "'tfidf' is not an architecture of qa"),
        (["tune", "nli", "--arch", "classic"], "'classic' is not an architecture of nli"),
        (["train-all", "--arch", "minilm"], "'minilm' is not an architecture of qa"),
    ],
)
def test_an_unknown_architecture_is_refused_up_front(argv, message, tmp_path, capsys) -> None:
    error = run_error([*argv, "--data-dir", str(tmp_path)], capsys)
    assert "argument --arch:" in error and message in error


def test_registry_architectures_are_the_models() -> None:
    from training.models import profile, qa, similarity
    from training.tasks.registry import ARCHITECTURES

    assert ARCHITECTURES["qa"] == qa.ARCHITECTURES
    assert ARCHITECTURES["profile"] == profile.ARCHITECTURES
    assert ARCHITECTURES["similarity"] == similarity.ARCHITECTURES


@pytest.mark.parametrize("task", ["qa", "profile", "similarity", "nli"])
def test_a_data_dir_without_the_task_files_exits_2(task, tmp_path, capsys) -> None:
    argv = ["train", task, "--preset", "tiny", "--data-dir", str(tmp_path)]
    argv += ["--model-repo", str(tmp_path / "repo"), "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("python -m training: error: ") and str(tmp_path) in error
    assert "Traceback" not in error


@pytest.mark.parametrize(
    "read",
    [
        read_babi,
        read_blogs,
        read_sick,
        lambda path: load_pairs(path, [], 0.2, 1),
        lambda path: read_babi(path / "a-file"),
    ],
)
def test_readers_raise_missing_data_naming_the_path(read, tmp_path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(MissingDataError, match=str(tmp_path)) as raised:
        read(tmp_path)
    assert isinstance(raised.value, DataError) and isinstance(raised.value, FileNotFoundError)


def test_a_missing_extra_dataset_is_refused(tmp_path) -> None:
    # The classic similarity preset trains on STS + SICK: without SICK it trained on STS alone.
    data_dir = FIXTURES / "sts"
    with pytest.raises(MissingDataError, match="extra_data 'sick'"):
        load_pairs(data_dir / "stsbenchmark", ["sick"], 0.2, 1)


@pytest.mark.parametrize(
    "text",
    [
        "1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n" * 6,  # one answer
        "Mary moved to the bathroom.\nWhere is Mary?\tbathroom\n",  # every line bad
    ],
    ids=["one-answer", "no-question"],
)
def test_babi_with_fewer_than_two_answers_exits_2(text, tmp_path, capsys) -> None:
    # Before: pydantic's ValidationError traceback from the answer head's spec (exit 1).
    data_dir = tmp_path / "babi"
    data_dir.mkdir()
    (data_dir / "qa1_single-supporting-fact_train.txt").write_text(text)
    argv = ["train", "qa", "--preset", "tiny", "--data-dir", str(data_dir)]
    argv += ["--model-repo", str(tmp_path / "repo"), "--runs-dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "distinct answer(s)" in error and "qa1_single-supporting-fact_train.txt" in error
    assert "Traceback" not in error and not (tmp_path / "repo").exists()


# Found by the new-user trial (newuser9): a folder where nothing can be made (procfs here; a
# read-only mount alike, which root's permissions do not tell) passed the check, so
# `--model-repo` there trained the whole run and ended in a FileNotFoundError traceback at the
# export; `--runs-dir` and `fetch --data-dir` ended in one too.
UNWRITABLE = "/proc/self/no-such-folder/repo"


@pytest.mark.parametrize("option", ["--model-repo", "--runs-dir"])
def test_an_output_dir_where_no_folder_can_be_made_is_refused(option, tmp_path, capsys) -> None:
    error = run_error(["train", "qa", option, UNWRITABLE, "--data-dir", str(tmp_path)], capsys)
    assert f"argument {option}: cannot make a folder in '/proc/self'" in error
    assert "Traceback" not in error


def test_fetch_refuses_a_data_dir_where_no_folder_can_be_made(capsys) -> None:
    error = run_error(["fetch", "--data-dir", UNWRITABLE], capsys)
    assert "argument --data-dir: cannot make a folder in '/proc/self'" in error


def test_fetch_verify_only_reads_a_folder_it_cannot_write(capsys) -> None:
    # Checking local copies writes nothing: a read-only data dir is fine there.
    assert main(["fetch", "--verify-only", "--data-dir", "/proc/self"]) == 1
    assert "check failed" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--model-repo", "--runs-dir", "--data-dir"])
def test_an_empty_path_is_refused(option, tmp_path, capsys) -> None:
    # Path("") is the current folder: an unset variable had trained into it.
    argv = ["train", "qa", "--data-dir", str(tmp_path), option, ""]
    error = run_error(argv, capsys)
    assert f"argument {option}: must name a folder, got ''" in error


@pytest.mark.parametrize("command", [["train", "qa"], ["train-all"], ["tune", "qa", "--export"]])
def test_a_models_config_the_export_would_refuse_is_refused_first(
    command, tmp_path, capsys
) -> None:
    # Found by the new-user trial (newuser9): a hand-edited models.config that does not parse
    # was a ModelConfigError traceback at the export, once the whole run had trained.
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "models.config").write_text("model_config_list { config { name: ")
    argv = [*command, "--data-dir", str(tmp_path), "--model-repo", str(tmp_path / "repo")]
    error = run_error(argv, capsys)
    assert "argument --model-repo: models.config does not parse" in error
