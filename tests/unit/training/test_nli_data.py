"""The SICK entailment reader and the stratified validation split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from training.data.sick import LABELS, NliPair, parse_line, read_sick, stratified_split

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sick"


def test_reader_keeps_good_rows_and_counts_bad_ones():
    data = read_sick(FIXTURES)
    assert data.files == ["SICK_train.txt", "SICK_trial.txt"]
    # Bad: an empty hypothesis, an unknown label, relatedness 9.5, the trial file's header.
    assert data.bad_lines == 4
    assert len(data.pairs) == 12
    assert any("MAYBE" in sample for sample in data.bad_line_samples)
    first = data.pairs[1]
    assert first.premise == "A man is playing a guitar"  # sentence_A is the premise
    assert first.hypothesis == "A person is playing an instrument"
    assert LABELS[first.label] == "ENTAILMENT"
    assert first.relatedness == pytest.approx(4.2)
    assert {pair.source for pair in data.pairs} == {"SICK_train.txt", "SICK_trial.txt"}


@pytest.mark.parametrize(
    "line",
    [
        "1\tA\tB\t4.0",  # a field short
        "1\tA\tB\t4.0\tNEUTRAL\textra",
        "x\tA\tB\t4.0\tNEUTRAL",
        "1\tA\tB\tnan\tNEUTRAL",
        "1\tA\tB\t0.5\tNEUTRAL",
        "1\tA\tB\tfour\tNEUTRAL",
        "1\tA\u00e9\ufffd\tB\t4.0\tNEUTRAL",  # undecodable bytes
    ],
)
def test_malformed_lines_are_rejected(line):
    assert parse_line(line, "f") is None


def test_invalid_utf8_counts_as_a_bad_line(tmp_path):
    (tmp_path / "SICK_train.txt").write_bytes(
        b"1\tA man sings\tA man is singing\t4.5\tENTAILMENT\n2\tA \xff\tB\t3.0\tNEUTRAL\n"
    )
    data = read_sick(tmp_path)
    assert (len(data.pairs), data.bad_lines) == (1, 1)


def test_missing_files_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SICK_train\.txt"):
        read_sick(tmp_path)


def _pairs(counts: dict[int, int]) -> list[NliPair]:
    return [
        NliPair(str(index), f"p{label}-{index}", "h", 3.0, label, "f")
        for label, count in counts.items()
        for index in range(count)
    ]


def test_split_is_stratified_disjoint_and_fixed_by_the_seed():
    pairs = _pairs({0: 40, 1: 100, 2: 20})
    train, validation = stratified_split(pairs, 0.1, seed=7)
    assert Counter(pair.label for pair in validation) == {0: 4, 1: 10, 2: 2}
    assert len(train) + len(validation) == len(pairs)
    assert not {id(pair) for pair in train} & {id(pair) for pair in validation}
    assert stratified_split(pairs, 0.1, seed=7) == (train, validation)
    assert stratified_split(pairs, 0.1, seed=8)[1] != validation
    # Both parts keep file order.
    assert validation == [pair for pair in pairs if pair in validation]


def test_split_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="validation_fraction"):
        stratified_split(_pairs({0: 3}), 1.0, seed=1)


def test_a_trailing_tab_is_no_extra_column(tmp_path):
    # A row ending in a TAB (an empty sixth column) was dropped: every row of such a file, so
    # nli stopped with 'no examples' while similarity's SICK reader kept the same rows.
    (tmp_path / "SICK_train.txt").write_text(
        "1\tA man sings\tA man is singing\t4.5\tENTAILMENT\t\n2\tA dog\tA cat\t1.5\tNEUTRAL\t \n"
    )
    data = read_sick(tmp_path)
    assert (len(data.pairs), data.bad_lines) == (2, 0)
    assert [LABELS[pair.label] for pair in data.pairs] == ["ENTAILMENT", "NEUTRAL"]
