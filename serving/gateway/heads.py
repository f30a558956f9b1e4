"""Output tensors -> readable answers, one function per head kind of the serving spec.

Shapes follow :mod:`serving.spec`: ``categorical`` / ``multilabel`` ``[batch, len(labels)]``;
``binary``, ``regression``, ``score`` ``[batch]`` or ``[batch, 1]``; ``segment_weights``
``[batch, max_segments]``; ``token_labels`` ``[batch, tokens, len(labels)]`` (``tokens`` at
least each row's length: :mod:`serving.token_labels`). Any other shape, a missing output, a
non-finite value or, for the heads read as probabilities, values that are none
(:func:`serving.spec_outputs.probability_detail`) raises :class:`OutputError` (the gateway
answers 502 and never routes a version whose example fails).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.spec import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentWeightsHead,
    TokenLabelsHead,
)
from serving.spec_outputs import ACTIVATIONS, probability_detail, scalar_width_hint
from serving.token_labels import Spans, TokenWords, token_answer

Outputs = Mapping[str, npt.NDArray[Any]]
Values = npt.NDArray[np.float64]
Answer = Any  # a JSON value: dict for most heads, a list for segment_weights


class OutputError(ValueError):
    """The model answered tensors that do not fit its spec (shape, width, NaN or inf)."""


class ProbabilityError(OutputError):
    """A head whose answers are probabilities got values that are none (``head``'s)."""

    def __init__(self, head: HeadSpec, detail: str) -> None:
        super().__init__(f"output {head.output!r} has {detail}")
        self.head = head


def head_values(outputs: Outputs, head: HeadSpec, rows: int) -> Values:
    """The head's output as float64, shape-checked against the spec, all values finite."""
    if head.output not in outputs:
        raise OutputError(f"output {head.output!r} missing")
    values = np.asarray(outputs[head.output], dtype=np.float64)
    if isinstance(head, TokenLabelsHead):
        # Any number of positions: a batch's longest row or a fixed-length input's; a row
        # longer than it is refused when read (token_answer).
        if values.ndim != 3 or values.shape[0] != rows or values.shape[2] != len(head.labels):
            raise OutputError(
                f"output {head.output!r} has shape {list(values.shape)}, expected "
                f"[{rows}, tokens, {len(head.labels)}]"
            )
        _check(head, values, sums=False)  # as below, range only
        return values
    width = _width(head)
    if width is None and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]  # a [batch, 1] head is the same answer as [batch]
    expected = (rows,) if width is None else (rows, width)
    if values.shape != expected:
        raise OutputError(
            f"output {head.output!r} has shape {list(values.shape)}, expected {list(expected)}"
            + scalar_width_hint(head, values.shape)
        )
    # The fit check saw probabilities for the example; an answer of other values (a model
    # server that loaded another model under the version number, a relay that changed
    # them) was answered as probabilities of 2.0 or -0.2. Found by the adversarial repo
    # pass 6.
    _check(head, values)
    return values


def _check(head: HeadSpec, values: Values, sums: bool = True) -> None:
    """OutputError for a non-finite value, then ProbabilityError for values that are not the
    head's probabilities (:func:`serving.spec_outputs.probability_detail`)."""
    if head.kind not in ACTIVATIONS or values.size == 0:
        if not np.isfinite(values).all():
            raise OutputError(f"output {head.output!r} has NaN or infinite values")
        return
    # The range check's min and max tell finiteness too (numpy's min and max propagate a
    # NaN; an infinity is the min or the max): no isfinite pass over the values.
    low, high = float(values.min()), float(values.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise OutputError(f"output {head.output!r} has NaN or infinite values")
    detail = probability_detail(head.kind, values, sums, extremes=(low, high))
    if detail is not None:
        raise ProbabilityError(head, detail)


def _width(head: HeadSpec) -> int | None:
    if isinstance(head, CategoricalHead | MultilabelHead):
        return len(head.labels)
    if isinstance(head, SegmentWeightsHead):
        return head.rule.max_segments
    return None


def _with_note(answer: dict[str, Any], head: HeadSpec) -> dict[str, Any]:
    if head.note:
        answer["note"] = head.note
    return answer


def _top(probabilities: list[float], top_k: int) -> list[int]:
    # heapq.nlargest is sorted(..., reverse=True)[:k] (documented): the order of a stable
    # descending argsort, ties by label index, without numpy's negated copy and full sort
    # of every label (one max() when k is 1, the default).
    return heapq.nlargest(max(1, top_k), range(len(probabilities)), key=probabilities.__getitem__)


def _candidates(
    labels: Sequence[str], probabilities: list[float], order: list[int]
) -> list[dict[str, Any]]:
    return [{"label": labels[index], "probability": probabilities[index]} for index in order]


def categorical(
    head: CategoricalHead, row: Values, top_k: int, probabilities_map: bool = True
) -> dict[str, Any]:
    """Best label first; ``top_k`` candidates (at most the label count), stable on ties.

    ``probabilities_map`` False: no ``probabilities`` key (every label's; an endpoint whose
    answer does not show it, ``/v1/qa``, spares building a dict of every label per answer)."""
    probabilities: list[float] | None = None
    if top_k <= 1 and not probabilities_map:
        # The best label alone: numpy's argmax is the first best, as max() in _top picks it
        # (no NaN reaches here: head_values), without a Python float per label.
        order = [int(row.argmax())]
        candidates = [{"label": head.labels[order[0]], "probability": row.item(order[0])}]
    else:
        # Python floats once (tolist: the same values as float(row[i]), without a numpy
        # scalar per label).
        probabilities = row.tolist()
        order = _top(probabilities, top_k)
        candidates = _candidates(head.labels, probabilities, order)
    answer: dict[str, Any] = {
        "label": candidates[0]["label"],
        "probability": candidates[0]["probability"],
    }
    if probabilities is not None and probabilities_map:
        answer["probabilities"] = dict(zip(head.labels, probabilities, strict=True))
    answer["candidates"] = candidates
    # "" is a label without a description: no key, as for a unit or a note ("" was answered).
    if head.label_descriptions is not None and (text := head.label_descriptions[order[0]]):
        answer["description"] = text
    return _with_note(answer, head)


def binary(head: BinaryHead, value: float) -> dict[str, Any]:
    """``labels[1]`` at or above the threshold, else ``labels[0]``; probability of that label."""
    negative, positive = head.labels
    if value >= head.threshold:
        return _with_note({"label": positive, "probability": float(value)}, head)
    return _with_note({"label": negative, "probability": float(1.0 - value)}, head)


def multilabel(head: MultilabelHead, row: Values, top_k: int | None = None) -> dict[str, Any]:
    """Labels whose probability reaches their threshold, in label order; with ``top_k``, also
    the ``top_k`` most probable labels as candidates, best first (a request's ``top_k`` was
    accepted and ignored for this kind)."""
    values: list[float] = row.tolist()
    if head.thresholds is None:
        chosen = [
            label
            for label, value in zip(head.labels, values, strict=True)
            if value >= head.threshold
        ]
    else:
        chosen = [
            label
            for label, value, threshold in zip(head.labels, values, head.thresholds, strict=True)
            if value >= threshold
        ]
    answer: dict[str, Any] = {
        "labels": chosen,
        "probabilities": dict(zip(head.labels, values, strict=True)),
    }
    if top_k:
        answer["candidates"] = _candidates(head.labels, values, _top(values, top_k))
    return _with_note(answer, head)


def regression(head: RegressionHead, value: float) -> dict[str, Any]:
    """``value * scale + offset``, clipped to ``clip`` when the spec gives one."""
    result = value * head.scale + head.offset
    if not math.isfinite(result):  # an infinite scale in a spec would otherwise leak out
        raise OutputError(f"output {head.output!r} scaled to {result}")
    if head.clip is not None:
        result = min(max(result, head.clip[0]), head.clip[1])
    answer: dict[str, Any] = {"value": float(result)}
    if head.unit:  # none in the spec: no "unit" key (it was "", an empty unit)
        answer["unit"] = head.unit
    return _with_note(answer, head)


def score(head: ScoreHead, value: float) -> dict[str, Any]:
    """The score clipped to the spec's range."""
    low, high = head.range
    return _with_note({"value": float(min(max(value, low), high))}, head)


def segment_weights(
    head: SegmentWeightsHead, row: Values, segments: Sequence[str | None], top_k: int
) -> list[dict[str, Any]]:
    """The ``top_k`` heaviest existing segments, heaviest first (empty slots are skipped)."""
    weights: list[float] = row.tolist()
    slots = [(index, text) for index, text in enumerate(segments) if text]
    slots.sort(key=lambda slot: -weights[slot[0]])
    return [{"segment": text, "weight": weights[index]} for index, text in slots[:top_k]]


def head_answer(
    head: HeadSpec,
    values: Values,
    row: int,
    top_k: int | None,
    segments: Spans,
    probabilities_map: bool = True,
) -> Answer:
    """One instance's readable value of one head (``top_k`` None: the spec's default;
    ``segments``: the instance's spans for a segment or token head, else unused;
    ``probabilities_map``: :func:`categorical`'s)."""
    if isinstance(head, CategoricalHead):
        return categorical(head, values[row], top_k or head.top_k, probabilities_map)
    if isinstance(head, BinaryHead):
        return binary(head, float(values[row]))
    if isinstance(head, MultilabelHead):
        return multilabel(head, values[row], top_k or head.top_k)
    if isinstance(head, RegressionHead):
        return regression(head, float(values[row]))
    if isinstance(head, ScoreHead):
        return score(head, float(values[row]))
    if isinstance(head, TokenLabelsHead):
        if not isinstance(segments, TokenWords):
            raise OutputError(f"head {head.field!r}: no token spans for row {row}")
        try:
            return token_answer(head, values[row], segments)
        except IndexError as error:  # a row longer than the output's positions
            raise OutputError(str(error)) from error
    if isinstance(segments, TokenWords):
        raise OutputError(f"head {head.field!r}: token spans for a segment head")
    return segment_weights(head, values[row], segments, top_k or head.top_k)
