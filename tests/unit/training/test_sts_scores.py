"""STS and SICK readers count scores off their scale, NaN, infinite and empty ones as bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.sts import read_sick, read_sts

GOOD_STS = "main-news\theadlines\t2013\t0001\t{score}\tA man plays a flute.\tA man plays music."
GOOD_SICK = "{id}\tA dog runs in a park\tA dog is running\t{score}\tNEUTRAL"


@pytest.mark.parametrize("score", ["nan", "NaN", "7.5", "5.01", "-0.5", "inf", "", " "])
def test_sts_bad_score_is_a_bad_line(tmp_path: Path, score: str) -> None:
    path = tmp_path / "sts-dev.csv"
    path.write_text(GOOD_STS.format(score="3.0") + "\n" + GOOD_STS.format(score=score) + "\n")
    data = read_sts(path)
    assert [pair.score for pair in data.pairs] == [pytest.approx(0.6)]
    assert data.bad_lines == 1
    assert "line 2" in data.bad_line_samples[0]


@pytest.mark.parametrize("score", ["0", "5", "0.0", "5.000"])
def test_sts_scores_at_the_ends_of_the_scale_are_kept(tmp_path: Path, score: str) -> None:
    path = tmp_path / "sts-dev.csv"
    path.write_text(GOOD_STS.format(score=score) + "\n")
    data = read_sts(path)
    assert data.bad_lines == 0
    assert [pair.score for pair in data.pairs] == [pytest.approx(float(score) / 5)]


@pytest.mark.parametrize("score", ["nan", "7.5", "0.5", "5.5", "-inf", ""])
def test_sick_bad_relatedness_is_a_bad_line(tmp_path: Path, score: str) -> None:
    lines = [GOOD_SICK.format(id=1, score="4.5"), GOOD_SICK.format(id=2, score=score)]
    (tmp_path / "SICK_train.txt").write_text("\n".join(lines) + "\n")
    data = read_sick(tmp_path)
    assert [pair.score for pair in data.pairs] == [pytest.approx(0.875)]
    assert data.bad_lines == 1
