"""Turn output tensors into readable answers with the version's ``labels.json``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.gateway.schemas import Candidate, Gender, IncomeGroup, ProfileAnswer, QAAnswer

Outputs = Mapping[str, npt.NDArray[Any]]


class OutputError(ValueError):
    """The model answered with tensors that do not fit its contract or labels."""


def _output(outputs: Outputs, name: str, rows: int, ndim: int) -> npt.NDArray[np.float64]:
    if name not in outputs:
        raise OutputError(f"output {name!r} missing (got {sorted(outputs)})")
    values = np.asarray(outputs[name], dtype=np.float64)
    if ndim == 1 and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]  # a [batch, 1] head is the same answer as [batch]
    if values.ndim != ndim or values.shape[0] != rows:
        raise OutputError(f"output {name!r} has shape {values.shape}, expected {rows} rows")
    return values


def qa_answers(
    outputs: Outputs, labels: Mapping[str, Any], top_ks: Sequence[int]
) -> list[QAAnswer]:
    """The most probable answers per row, best first."""
    answers: list[str] = list(labels["answers"])
    probabilities = _output(outputs, "answer_probs", len(top_ks), 2)
    if probabilities.shape[1] != len(answers):
        raise OutputError(f"{probabilities.shape[1]} probabilities for {len(answers)} answers")
    results = []
    for row, top_k in zip(probabilities, top_ks, strict=True):
        order = np.argsort(-row, kind="stable")[:top_k]
        candidates = [
            Candidate(answer=answers[index], probability=float(row[index])) for index in order
        ]
        results.append(
            QAAnswer(
                answer=candidates[0].answer,
                confidence=candidates[0].probability,
                candidates=candidates,
            )
        )
    return results


def profile_answers(outputs: Outputs, labels: Mapping[str, Any], rows: int) -> list[ProfileAnswer]:
    """Age, income group (marked as a proxy when labels say so) and gender per row."""
    ages = _output(outputs, "age", rows, 1)
    incomes = _output(outputs, "income_probs", rows, 2)
    genders = _output(outputs, "gender_prob", rows, 1)
    groups: list[dict[str, Any]] = list(labels["income_groups"])
    if incomes.shape[1] != len(groups):
        raise OutputError(f"{incomes.shape[1]} income probabilities for {len(groups)} groups")
    gender_labels: list[str] = list(labels["gender"]["labels"])
    positive = str(labels["gender"]["positive"])
    negative = next(label for label in gender_labels if label != positive)
    return [
        ProfileAnswer(
            age=float(age),
            income_group=_income_group(income, groups, labels),
            gender=Gender(label=positive, probability=float(gender))
            if gender >= 0.5
            else Gender(label=negative, probability=float(1.0 - gender)),
        )
        for age, income, gender in zip(ages, incomes, genders, strict=True)
    ]


def _income_group(
    probabilities: npt.NDArray[np.float64], groups: list[dict[str, Any]], labels: Mapping[str, Any]
) -> IncomeGroup:
    best = int(np.argmax(probabilities))
    return IncomeGroup(
        group=int(groups[best]["group"]),
        label=str(groups[best]["label"]),
        probabilities=[float(value) for value in probabilities],
        is_proxy=bool(labels.get("income_is_proxy", True)),
        note=str(labels.get("income_note", "")),
    )


def similarity_scores(outputs: Outputs, rows: int) -> list[float]:
    """One score per pair, clipped to [0, 1]."""
    scores = _output(outputs, "score", rows, 1)
    return [float(value) for value in np.clip(scores, 0.0, 1.0)]
