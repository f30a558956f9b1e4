"""The profile task's targets and scores: per-head targets and sample weights, validation
metrics against constant-predictor baselines, and the ``val_combined`` terms.

The task itself (prepare, build, evaluate) is :class:`training.tasks.profile.ProfileTask`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.data.blogs import GENDERS, Blogger, IncomeGroups
from training.models.profile_heads import age_bands
from training.monitoring import MonitorTerm
from training.tasks.base import Arrays


def profile_targets(
    bloggers: Sequence[Blogger], income: IncomeGroups, band_head: bool = False
) -> tuple[Arrays, Arrays]:
    """Targets and per-output sample weights; unlabelled income rows get weight 0.

    ``band_head``: add ``age_band_probs``, the band index (0: <20, 1: 20-29, 2: 30+) int32.
    """
    groups = [income.group_of(blogger) for blogger in bloggers]
    targets = {
        "age": np.array([[blogger.age] for blogger in bloggers], np.float32),
        # Rows without an income label need some valid class id; weight 0 makes it inert.
        "income_probs": np.array([group or 0 for group in groups], np.int32),
        "gender_prob": np.array([[GENDERS.index(b.gender)] for b in bloggers], np.float32),
    }
    ones = np.ones(len(bloggers), np.float32)
    weights = {
        "age": ones,
        "income_probs": np.array([group is not None for group in groups], np.float32),
        "gender_prob": ones,
    }
    if band_head:
        targets["age_band_probs"] = age_bands(targets["age"]).astype(np.int32)
        weights["age_band_probs"] = ones
    return targets, weights


def profile_metrics(
    predictions: dict[str, Any], targets: Arrays, income_weights: np.ndarray
) -> dict[str, float]:
    """Gender accuracy, age MAE, 3-band age accuracy (<20, 20-29, 30+) and income accuracy on
    the rows that have an income label.

    ``age_band_accuracy`` is the band the served answer gives: the ``age_band_probs`` head's
    when the model has one, else the predicted age's (``age_band_from_age_accuracy``).
    """
    gender = np.asarray(predictions["gender_prob"]).reshape(-1) >= 0.5
    age = np.asarray(predictions["age"]).reshape(-1)
    income = np.argmax(np.asarray(predictions["income_probs"]), axis=-1)
    labelled = income_weights > 0
    true_income = targets["income_probs"][labelled]
    true_age = targets["age"].reshape(-1)
    true_bands = age_bands(true_age)
    from_age = float(np.mean(age_bands(age) == true_bands))
    band_probs = predictions.get("age_band_probs")
    from_head = (
        float(np.mean(np.argmax(np.asarray(band_probs), axis=-1) == true_bands))
        if band_probs is not None
        else None
    )
    return {
        "gender_accuracy": float(np.mean(gender == (targets["gender_prob"].reshape(-1) > 0.5))),
        "age_mae": float(np.mean(np.abs(age - true_age))),
        "age_mae_median_baseline": float(np.mean(np.abs(true_age - np.median(true_age)))),
        "age_band_accuracy": from_age if from_head is None else from_head,
        "age_band_from_age_accuracy": from_age,
        "age_band_majority_baseline": float(np.max(np.bincount(true_bands)) / len(true_bands)),
        "income_accuracy_labelled": float(np.mean(income[labelled] == true_income))
        if labelled.any()
        else float("nan"),
        "income_labelled_examples": int(labelled.sum()),
        "income_majority_baseline": float(np.mean(true_income == np.bincount(true_income).argmax()))
        if labelled.any()
        else float("nan"),
    }


def monitor_terms(weights: Mapping[str, float], train_targets: Arrays) -> list[MonitorTerm]:
    """The ``val_combined`` terms with constant-predictor baselines from the training targets.

    ``weights`` keys are Keras log names: ``gender_prob_accuracy``, ``age_mae``,
    ``age_band_accuracy`` (the predicted age's band), ``age_band_probs_accuracy`` (the band
    head's); a weight of 0 leaves the term out.
    """
    male = float(np.mean(train_targets["gender_prob"]))
    ages = train_targets["age"].reshape(-1)
    bands = np.bincount(age_bands(ages))
    majority_band = float(bands.max() / bands.sum())
    baselines = {
        "gender_prob_accuracy": (max(male, 1.0 - male), True),
        "age_mae": (float(np.mean(np.abs(ages - np.median(ages)))), False),
        "age_band_accuracy": (majority_band, True),
        "age_band_probs_accuracy": (majority_band, True),
    }
    unknown = sorted(set(weights) - set(baselines))
    if unknown:
        raise ValueError(f"unknown monitor_weights keys {unknown}; choose from {sorted(baselines)}")
    return [
        MonitorTerm(log, float(weight), *baselines[log])
        for log, weight in weights.items()
        if weight > 0
    ]
