"""Readers for STS Benchmark, SICK and MRPC, the train/validation carving and rank statistics."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training.correlation import average_ranks, pearson, spearman
from training.data.sts import load_pairs, read_mrpc, read_sick, read_sts, split_pairs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sts"


def test_sts_keeps_the_first_seven_fields_and_counts_bad_lines():
    data = read_sts(FIXTURES / "stsbenchmark" / "sts-train.csv")
    assert len(data.pairs) == 4
    assert data.bad_lines == 2  # a score that is not a number, a row with 6 fields
    extra = data.pairs[2]  # the row with two trailing columns
    assert (extra.left, extra.right) == (
        "Stocks fall in early trading.",
        "A cat sleeps on the sofa.",
    )
    assert extra.score == pytest.approx(0.08)
    assert data.pairs[0].score == pytest.approx(1.0) and data.pairs[0].source == "sts"


def test_sts_does_not_apply_csv_quoting(tmp_path):
    path = tmp_path / "sts-dev.csv"
    path.write_text('g\tf\t2012\t1\t2.5\t"Quoted start\tends here"\n')
    assert read_sts(path).pairs[0].left == '"Quoted start'


def test_sts_counts_undecodable_lines(tmp_path):
    path = tmp_path / "sts-dev.csv"
    path.write_bytes(b"g\tf\t2012\t1\t2.5\tcaf\xe9\tcafe\ng\tf\t2012\t2\t5.0\ta\tb\n")
    data = read_sts(path)
    assert len(data.pairs) == 1 and data.bad_lines == 1


def test_sick_scales_relatedness_and_rejects_empty_sentences():
    data = read_sick(FIXTURES / "sick")
    assert [pair.score for pair in data.pairs] == [pytest.approx(0.875), pytest.approx(0.0)]
    assert data.bad_lines == 1


def test_mrpc_strips_the_byte_order_mark():
    data = read_mrpc(FIXTURES / "mrpc")
    assert len(data.pairs) == 2 and data.bad_lines == 1
    assert data.pairs[0].score == 1.0  # the first label is read despite the BOM before it
    assert data.pairs[0].left.startswith("Amrozi")
    assert data.pairs[1].score < 1.0


def test_load_pairs_uses_train_and_dev_plus_extras():
    _, validation, summary = load_pairs(FIXTURES, ["sick", "mrpc"], 0.2, seed=1)
    assert len(validation) == 4 and summary["validation_pairs"] == 4
    assert summary["train_sources"] == {"sts": 4, "sick": 2, "mrpc": 2}
    assert summary["bad_lines"] == 4
    assert "sts-dev.csv" in summary["split"]


def test_load_pairs_carves_validation_when_the_train_file_is_missing(tmp_path):
    shutil.copy(FIXTURES / "stsbenchmark" / "sts-dev.csv", tmp_path / "sts-dev.csv")
    train, validation, summary = load_pairs(tmp_path, [], 0.25, seed=1)
    assert (len(train), len(validation)) == (3, 1)
    assert "carved" in summary["split"]
    again = load_pairs(tmp_path, [], 0.25, seed=1)
    assert again[1] == validation
    with pytest.raises(FileNotFoundError):
        load_pairs(tmp_path / "missing", [], 0.25, seed=1)


def test_split_pairs_is_a_partition():
    pairs = read_sts(FIXTURES / "stsbenchmark" / "sts-train.csv").pairs
    train, validation = split_pairs(pairs, 0.5, seed=3)
    assert sorted(map(id, train + validation)) == sorted(map(id, pairs))


def test_ranks_average_ties_and_spearman_matches_known_values():
    np.testing.assert_array_equal(average_ranks([10, 20, 20, 5]), [1.0, 2.5, 2.5, 0.0])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 1, 0, -5]) == pytest.approx(-1.0)
    # Monotone but not linear: Spearman is 1, Pearson is not.
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(values, np.exp(values)) == pytest.approx(1.0)
    assert pearson(values, np.exp(values)) < 0.95
    # A hand-computed case with a tie: ranks x=[0,1,2,3], y=[0,2.5,1,2.5] -> 0.6325
    assert spearman([1, 2, 3, 4], [1, 3, 2, 3]) == pytest.approx(0.632455532, abs=1e-6)
