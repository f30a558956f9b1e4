"""One validation quantity for multi-head models: ``val_combined``, for checkpoints and stopping.

Early stopping on one head's metric lets the other heads get worse unseen (the profile heads
peak at different epochs), and ``val_loss`` mixes losses of different units. ``val_combined``
puts every watched head on the same scale first: each term is the head's validation error
divided by the error of a constant predictor on the same data (majority class for an
accuracy, the training median for an MAE), so 1.0 means "no better than a constant answer"
and 0.0 is perfect. Then

    val_combined = sum_h(weight_h * error_h / baseline_error_h) / sum_h(weight_h)

where ``error = 1 - accuracy`` for accuracies and ``error = value`` for errors such as MAE.
Lower is better (monitor mode ``"min"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import keras

COMBINED = "combined"
VALIDATION_COMBINED = f"val_{COMBINED}"


@dataclass(frozen=True)
class MonitorTerm:
    """One head's share of ``val_combined``.

    ``log`` is the Keras log name without ``val_`` (e.g. ``gender_prob_accuracy``);
    ``baseline`` is the same quantity for a constant predictor; ``higher_is_better`` marks
    accuracies (their error is ``1 - value``).
    """

    log: str
    weight: float
    baseline: float
    higher_is_better: bool = False

    def normalised_error(self, value: float) -> float:
        """The term's error divided by the constant predictor's error (1.0 = no skill)."""
        error = 1.0 - value if self.higher_is_better else value
        baseline = 1.0 - self.baseline if self.higher_is_better else self.baseline
        if baseline <= 0:
            raise ValueError(f"{self.log}: a constant predictor is already perfect")
        return error / baseline


def combined_value(logs: Mapping[str, Any], terms: Sequence[MonitorTerm], prefix: str) -> float:
    """The weighted mean of the terms' normalised errors read from ``logs``.

    Raises ``KeyError`` naming the missing log if a head's metric is not in ``logs``.
    """
    total = sum(term.weight for term in terms)
    if not terms or total <= 0:
        raise ValueError("the combined monitor needs at least one term with a positive weight")
    value = 0.0
    for term in terms:
        key = f"{prefix}{term.log}"
        if key not in logs:
            raise KeyError(f"{key} is not in the epoch logs (have: {sorted(logs)})")
        value += term.weight * term.normalised_error(float(logs[key]))
    return value / total


class CombinedMonitor(keras.callbacks.Callback):  # type: ignore[misc]
    """Adds ``val_combined`` (and ``combined`` for the training metrics) to the epoch logs.

    It must run before the callbacks that watch the quantity (EarlyStopping,
    ModelCheckpoint, ReduceLROnPlateau): the pipeline puts a task's ``monitor_callbacks``
    first.
    """

    def __init__(self, terms: Sequence[MonitorTerm]) -> None:
        super().__init__()
        self.terms = tuple(terms)
        combined_value({term.log: 0.5 for term in self.terms}, self.terms, "")  # validate

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Write the combined values into the logs every later callback sees."""
        if logs is None:
            return
        if all(term.log in logs for term in self.terms):
            logs[COMBINED] = combined_value(logs, self.terms, "")
        if any(key.startswith("val_") for key in logs):
            logs[VALIDATION_COMBINED] = combined_value(logs, self.terms, "val_")
