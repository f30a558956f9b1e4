"""tokenizer_cost prints, per model of a repo, the file's and the ASCII twin's encode time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtests.tokenizer_cost import main, texts_of
from serving.contract import version_dirs


def test_every_string_of_a_body_is_timed() -> None:
    body = {"pairs": [{"text_a": "a", "text_b": "b"}], "top_k": 2, "posts": ["c", "d"]}
    assert texts_of(body) == ["a", "b", "c", "d"]


def test_a_line_per_model_with_both_figures(
    tiny_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model-repo", str(tiny_repo), "--seconds", "0.01", "--repeat", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    models = sorted(path.name for path in tiny_repo.iterdir() if version_dirs(path))
    assert [line.split()[0] for line in lines] == models
    figure = r"file \d+\.\d us(, ASCII twin \d+\.\d us \(\d\.\d\dx\)| \(no twin\))$"
    assert all(re.search(figure, line) for line in lines), lines
    assert any("ASCII twin" in line for line in lines)  # the tiny qa file has NFD and StripAccents
