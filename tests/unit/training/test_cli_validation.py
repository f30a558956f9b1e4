"""Regression tests for the training CLI's input checks (issue 8, section 6).

Numeric options are checked up front (argparse's exit 2 and message, before TensorFlow or any
data is touched), and data that would train blind (an empty training or validation split, in
any task) stops before training with exit 2 and a message instead of a Keras traceback.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from training.cli import main
from training.cli_types import MAX_SEED
from training.data.errors import DataError
from training.data.sts import read_sts
from training.pipeline import check_prepared
from training.tasks.base import PreparedData, RunSettings
from training.tasks.registry import get_task
from training.tuning import tune_task

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RUN_COMMANDS = [["train", "qa"], ["train-all"], ["tune", "profile"]]
BAD_NUMBERS = [
    ("--epochs", "0"),
    ("--epochs", "-3"),
    ("--epochs", "two"),
    ("--max-examples", "0"),
    ("--max-examples", "-1"),
    ("--seed", "-1"),
    ("--seed", str(MAX_SEED + 1)),
    ("--seed", "1.5"),
]
# A dev file whose every line is bad: NaN, 7.5 on the 0-5 scale, an empty score.
BAD_STS_LINES = [
    "main-news\theadlines\t2013\t0001\tnan\tA man plays.\tA man is playing.",
    "main-news\theadlines\t2013\t0002\t7.5\tA cat sleeps.\tThe cat is asleep.",
    "main-news\theadlines\t2013\t0003\t\tStocks fall.\tShares drop.",
]


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of a CLI run that must end with exit code 2."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=" ".join)
@pytest.mark.parametrize(("option", "value"), BAD_NUMBERS, ids=[f"{o}={v}" for o, v in BAD_NUMBERS])
def test_bad_numbers_exit_2_in_every_run_command(command, option, value, capsys) -> None:
    error = run_error([*command, "--preset", "tiny", option, value], capsys)
    assert f"argument {option}: must be" in error, error


@pytest.mark.parametrize("trials", ["0", "-1", "x"])
def test_tune_refuses_trials_below_one(trials, capsys) -> None:
    # --trials 0 ran an unbounded search (53 trials), --trials -1 an IndexError.
    error = run_error(["tune", "profile", "--preset", "tiny", "--trials", trials], capsys)
    assert "argument --trials: must be an integer" in error


@pytest.mark.parametrize("timeout", ["0", "-2", "nan", "inf", "soon"])
def test_fetch_refuses_a_bad_timeout(timeout, capsys) -> None:
    error = run_error(["fetch", "--verify-only", "--timeout", timeout], capsys)
    assert "argument --timeout: must be a number of seconds" in error


def test_tune_task_refuses_trials_below_one(tmp_path: Path) -> None:
    settings = RunSettings(tmp_path, tmp_path / "repo", tmp_path / "run", preset="tiny")
    with pytest.raises(ValueError, match="trials must be >= 1"):
        tune_task(get_task("qa"), settings, {}, trials=0)


def sts_dir(root: Path, train: list[str] | None = None, dev: list[str] | None = None) -> Path:
    """A data dir with the STS fixture, optionally with its train or dev file replaced."""
    folder = root / "data" / "stsbenchmark"
    shutil.copytree(FIXTURES / "sts" / "stsbenchmark", folder)
    for name, lines in (("sts-train.csv", train), ("sts-dev.csv", dev)):
        if lines is not None:
            (folder / name).write_text("\n".join(lines) + "\n")
    return root / "data"


def train_argv(task: str, data_dir: Path, root: Path, *extra: str) -> list[str]:
    return [
        *(["train", task] if task != "tune-similarity" else ["tune", "similarity"]),
        "--preset",
        "tiny",
        "--data-dir",
        str(data_dir),
        "--model-repo",
        str(root / "repo"),
        "--runs-dir",
        str(root / "runs"),
        *extra,
    ]


def assert_stopped_before_training(root: Path) -> None:
    assert not list(root.glob("runs/*/training_log.csv")), "training started"
    assert not list(root.glob("repo/*/[0-9]*")), "a version was exported"


@pytest.mark.parametrize("command", ["similarity", "tune-similarity"])
def test_all_bad_validation_lines_stop_before_training(command, tmp_path, capsys) -> None:
    data_dir = sts_dir(tmp_path, dev=BAD_STS_LINES)
    assert main(train_argv(command, data_dir, tmp_path)) == 2
    error = capsys.readouterr().err
    assert "similarity: no examples in the validation inputs and validation targets" in error
    # The three dev lines are counted as bad, besides the fixture's bad training lines.
    bad = read_sts(FIXTURES / "sts" / "stsbenchmark" / "sts-train.csv").bad_lines + 3
    assert f'"bad_lines": {bad}' in error and "Traceback" not in error
    assert_stopped_before_training(tmp_path)


def test_all_bad_training_lines_stop_before_training(tmp_path, capsys) -> None:
    data_dir = sts_dir(tmp_path, train=BAD_STS_LINES)
    assert main(train_argv("similarity", data_dir, tmp_path)) == 2
    error = capsys.readouterr().err
    assert "similarity: no examples in the training inputs and training targets" in error
    assert_stopped_before_training(tmp_path)


@pytest.mark.parametrize(
    ("task", "data_dir"), [("qa", FIXTURES / "babi"), ("profile", FIXTURES / "blogs")]
)
def test_an_empty_validation_split_stops_every_task(task, data_dir, tmp_path, capsys) -> None:
    # One question per bAbI task (one story each) or one blogger: nothing left to validate on.
    assert main(train_argv(task, data_dir, tmp_path, "--max-examples", "1")) == 2
    error = capsys.readouterr().err
    assert f"{task}: no examples in the validation" in error, error
    assert_stopped_before_training(tmp_path)


def test_check_prepared_is_generic_over_output_names(tmp_path: Path) -> None:
    import numpy as np

    from serving.spec import ScoreHead, ServingSpec, TextInput

    def prepared(train_rows: int, val_rows: int) -> PreparedData:
        return PreparedData(
            train_inputs={"any_ids": np.zeros((train_rows, 4), np.int32)},
            train_targets={"label": np.zeros((train_rows, 1), np.float32)},
            val_inputs={"any_ids": np.zeros((val_rows, 4), np.int32)},
            val_targets={"label": np.zeros((val_rows, 1), np.float32)},
            tokenizer_path=tmp_path / "tokenizer.json",
            spec=ServingSpec(
                title="any model",
                inputs=[TextInput(field="text", tensor="any_ids", max_tokens=4, vocab_size=10)],
                heads=[ScoreHead(output="label", field="label")],
                example={"text": "x"},
            ),
            data_summary={"files": ["nli.jsonl"], "bad_lines": 7},
        )

    check_prepared("nli", prepared(3, 2))  # both splits present: no error
    with pytest.raises(DataError, match=r"nli: no examples in the validation .*\"bad_lines\": 7"):
        check_prepared("nli", prepared(3, 0))
    with pytest.raises(DataError, match="nli: no examples in the training inputs"):
        check_prepared("nli", prepared(0, 2))


def test_help_points_to_serving_your_own_model_and_explains_every_run_option() -> None:
    # Found as a new user: `python -m training --help` showed its docstring's RST
    # (``python -m training ...``) and no word of exporting one's own model; --preset,
    # --model-repo and --runs-dir had no help.
    from training.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    assert "``" not in top and "export_for_serving" in top
    train = next(
        action.choices["train"]
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for action in train._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{action.option_strings} has no help"
