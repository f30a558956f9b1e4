"""Correlation statistics used to score regression heads (numpy only, no SciPy needed).

STS Benchmark and SICK report Pearson and Spearman correlation between predicted and gold
scores (Cer et al. 2017, "SemEval-2017 Task 1", section 5); Spearman is Pearson over ranks,
with tied values sharing their average rank, as ``scipy.stats.spearmanr`` does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def spearman(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Spearman rank correlation (ties share their average rank), numpy only."""
    return pearson(average_ranks(first), average_ranks(second))


def pearson(first: npt.ArrayLike, second: npt.ArrayLike) -> float:
    """Pearson correlation of two equal-length vectors."""
    return float(np.corrcoef(np.ravel(first), np.ravel(second))[0, 1])


def average_ranks(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """0-based ranks of values; tied values all get the mean of their ranks."""
    flat = np.ravel(np.asarray(values, np.float64))
    order = np.argsort(flat, kind="mergesort")
    _, starts, counts = np.unique(flat[order], return_index=True, return_counts=True)
    ranks = np.empty(len(flat), np.float64)
    ranks[order] = np.repeat(starts + (counts - 1) / 2.0, counts)
    return ranks
