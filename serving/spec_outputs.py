"""Whether a head's output values can be what its kind reads them as: one check, export and
gateway.

``categorical`` and ``token_labels`` heads are read as a softmax (each row, each token's for
the latter, in [0, 1], summing to 1), ``binary`` and
``multilabel`` heads as sigmoids (each value in [0, 1]): the answers call them probabilities.
A model that ends in logits (trained with ``from_logits=True``) gives other values, which the
gateway would have answered as probabilities of 2.0 or -1.0. ``training.export`` refuses such
a model (``SpecMismatchError``) and the gateway's fit check does not route such a version,
both from the spec's example and with :func:`output_problem`'s reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from serving.spec import HeadSpec, ServingSpec

# float16 heads (mixed precision) round a probability by up to ~5e-4, a softmax's sum by more.
VALUE_TOLERANCE = 1e-3
SUM_TOLERANCE = 1e-2
ACTIVATIONS = {
    "categorical": "softmax",
    "binary": "sigmoid",
    "multilabel": "sigmoid",
    "token_labels": "softmax",  # one softmax per token, over the last axis
}


def head_labels(spec: ServingSpec) -> dict[str, list[str]]:
    """Each labelled head's output -> its labels, in column order (``categorical``,
    ``binary``, ``multilabel``, ``token_labels``: the last axis): what the export records in
    ``model_card.json`` and the gateway compares with the spec it serves."""
    return {
        head.output: list(labels)
        for head in spec.heads
        if (labels := getattr(head, "labels", None)) is not None
    }


def spec_wiring(spec: ServingSpec) -> dict[str, dict[str, str]]:
    """``input_tensors`` (each input field -> the signature input it feeds) and
    ``head_outputs`` (each head field -> the output it reads): what the export records in
    ``model_card.json`` and the gateway compares with the spec it serves (a field wired to
    another tensor than exported is refused: :func:`serving.gateway.asset_checks.
    check_exported_hashes`)."""
    return {
        "input_tensors": {item.field: item.tensor for item in spec.inputs},
        "head_outputs": {head.field: head.output for head in spec.heads},
    }


def probability_detail(
    kind: str,
    values: npt.NDArray[Any],
    sums: bool = True,
    extremes: tuple[float, float] | None = None,
) -> str | None:
    """Why ``values`` (a ``kind`` head's output, any float dtype) are not that kind's
    probabilities (``values from -1 to 2, not probabilities in [0, 1]``), or None (also for
    every other head kind). Cheap enough for every answer: a min, a max and, for a softmax
    (``categorical``, ``token_labels``), one sum per row (per token); ``sums`` False: the
    range alone (a merged batch's per-token outputs may hold positions no model computed).
    ``extremes``: ``(values.min(), values.max())`` as floats, when the caller has them."""
    if kind not in ACTIVATIONS or values.size == 0:
        return None
    low, high = extremes if extremes is not None else (float(values.min()), float(values.max()))
    if low < -VALUE_TOLERANCE or high > 1 + VALUE_TOLERANCE:
        return f"values from {low:.3g} to {high:.3g}, not probabilities in [0, 1]"
    if sums and ACTIVATIONS[kind] == "softmax":
        # The row sums as Python floats: for the one to a few rows of an answer this is a
        # third cheaper than numpy's abs and max on them (the check runs on every answer).
        totals = np.asarray(values, dtype=np.float64).sum(axis=-1).ravel().tolist()
        least, most = min(totals), max(totals)
        if most - 1.0 > SUM_TOLERANCE or 1.0 - least > SUM_TOLERANCE:
            return f"rows summing to {least:.3g}-{most:.3g}, not 1"
    return None


def output_problem(head: HeadSpec, values: npt.NDArray[Any]) -> str | None:
    """Why ``values`` (the head's output for some instances, any float dtype) cannot be read
    as its kind's probabilities, or None (also for every other head kind): the
    :func:`probability_detail` with the remedy, for the export and the fit check."""
    detail = probability_detail(head.kind, np.asarray(values, dtype=np.float64))
    if detail is None:
        return None
    activation = ACTIVATIONS[head.kind]
    # Probabilities whose rows do not sum to 1 are most likely sigmoids (a multi-label model,
    # trained with binary_crossentropy) declared categorical: a softmax would change the model.
    sigmoids = (
        "; sigmoids, several labels at once, are a multilabel head: MultilabelHead(labels=...)"
        if detail.startswith("rows summing") and head.kind == "categorical"
        else ""
    )
    return (
        f"head {head.field} ({head.kind}): output {head.output} gives {detail} for the "
        f"example (end the model with a {activation}: a model trained with from_logits=True "
        f"outputs logits{sigmoids})"
    )


def scalar_width_hint(head: HeadSpec, shape: tuple[int | None, ...]) -> str:
    """A hint for a one-value head (binary, regression, score) whose output has another width,
    or "": the remedy for the output a user's model most likely ends in. Export and fit check
    both name it.

    A binary classifier ending in ``Dense(2, activation="softmax")`` (a common Keras form) is
    a categorical head of two labels; ``Dense(n, activation="sigmoid")`` under a binary head
    is a multilabel head; a regression or score head over ``Dense(n)`` (several predicted
    values) is n heads, since a head answers one value (its one ``unit``, ``scale``, ``clip``).
    The other way round, one sigmoid unit (``[batch]`` or ``[batch, 1]``) under a categorical
    head of two labels is a binary head (found by newuser7: "the spec needs [batch, 2]" named
    no fix).
    """
    if head.kind == "categorical" and len(head.labels) == 2 and tuple(shape[1:]) in ((), (1,)):
        return (
            f" (one sigmoid unit is a binary head: BinaryHead(labels={tuple(head.labels)!r}), "
            "its probability that of the second label)"
        )
    if len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 2:
        return ""
    width = shape[1]
    if head.kind == "binary" and width == 2:
        return (
            " (a 2-unit softmax is a categorical head: CategoricalHead(labels=[negative, "
            "positive]))"
        )
    if head.kind == "binary":
        return (
            f" ({width} sigmoid units are a multilabel head: MultilabelHead(labels=[...{width}]))"
        )
    if head.kind in ("regression", "score"):
        return (
            f" (a {head.kind} head answers one value: give each of the {width} values its own "
            f"output and head, keras.Model(inputs, {{'{head.output}_0': out[:, 0], "
            f"'{head.output}_1': out[:, 1], ...}}))"
        )
    return ""
