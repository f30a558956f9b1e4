"""The qa memnet's evidence head: its spec entry, its supporting-fact targets, its metric.

The memory network's ``sentence_weights`` (float32 ``[batch, max_sentences]``) are its
attention over the article's sentences, slot 0 = the last sentence. The served spec declares
them as a ``segment_weights`` head whose :class:`serving.spec.SegmentRule` (sentences end at
the tokenizer's period token, numbered from the end) is exactly the slot numbering of
``training.models.qa_layers.SentenceSlots``; training supervises them with bAbI's supporting
facts mapped through :func:`serving.encoding.segment_texts`, the gateway's own splitter.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from serving.encoding import segment_texts
from serving.spec import SegmentRule, SegmentWeightsHead, ServingSpec
from training.data.babi import BabiExample
from training.models.qa import EVIDENCE_OUTPUT, HOP_OUTPUT_PREFIX
from training.tasks.base import Arrays, PreparedData

PERIOD = "."  # the memnet's sentence end (SentenceSlots' period_id is this token's id)
EVIDENCE_FIELD = "evidence"
# The most memory hops a qa model has (the tuner's upper bound; the presets use 2 or 3).
MAX_HOPS = 3


def evidence_head(max_sentences: int) -> SegmentWeightsHead:
    """The spec head of ``sentence_weights``: the article's sentences, last first."""
    return SegmentWeightsHead(
        output=EVIDENCE_OUTPUT,
        field=EVIDENCE_FIELD,
        description="The story's sentences the answer rests on, heaviest first "
        "(the memory network's attention, averaged over its hops).",
        input_field="article",
        rule=SegmentRule(separator_token=PERIOD, order="last_first", max_segments=max_sentences),
        top_k=3,
    )


def spec_evidence_head(spec: ServingSpec) -> SegmentWeightsHead:
    """The spec's ``sentence_weights`` head (ValueError if it has none)."""
    for head in spec.heads:
        if isinstance(head, SegmentWeightsHead) and head.output == EVIDENCE_OUTPUT:
            return head
    raise ValueError(f"the spec has no segment_weights head {EVIDENCE_OUTPUT!r}")


def evidence_targets(
    tokenizer: Tokenizer, examples: list[BabiExample], spec: ServingSpec
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Targets ``[n, max_segments]`` and sample weights ``[n]`` for ``sentence_weights``.

    Each bAbI statement ends with a period, so statement ``i`` of ``k`` is slot ``k - 1 - i``
    (slot 0 = the last); a slot exists if :func:`serving.encoding.segment_texts` gives it a
    text after the article input's truncation (a sentence cut at its start still counts).
    Supporting facts in slots that do not exist (the story was cut, or is longer than
    ``max_segments`` sentences) are dropped; the rest share weight 1 equally. Examples with
    no kept fact get a row of zeros and sample weight 0.
    """
    head = spec_evidence_head(spec)
    article = spec.input(head.input_field)
    targets = np.zeros((len(examples), head.rule.max_segments), np.float32)
    for row, example in enumerate(examples):
        texts = segment_texts(tokenizer, example.article, article, head.rule)
        kept = sum(text is not None for text in texts)
        for index in example.supporting:
            slot = len(example.statements) - 1 - index
            if 0 <= slot < kept:
                targets[row, slot] = 1.0
    totals = targets.sum(axis=1, keepdims=True)
    targets = np.divide(targets, totals, out=np.zeros_like(targets), where=totals > 0)
    return targets, (totals[:, 0] > 0).astype(np.float32)


HOP_ORDERS = ("repeat_last", "cycle")


def hop_fact(hop: int, facts: int, order: str) -> int:
    """Which supporting fact (0-based, file order) hop ``hop`` is shown when there are ``facts``.

    Hop ``k`` < ``facts`` gets fact ``k``. Later hops get the last fact again
    (``repeat_last``) or go through the facts again from the first (``cycle``: with two facts
    and three hops, 0 1 0), so a third hop re-reads the first fact knowing the second: in bAbI
    path finding the first step is only found once the second step's middle place is known.
    """
    if order not in HOP_ORDERS:
        raise ValueError(f"unknown hop_order {order!r}; choose from {HOP_ORDERS}")
    return hop % facts if order == "cycle" else min(hop, facts - 1)


def hop_targets(
    targets: npt.NDArray[np.float32],
    examples: list[BabiExample],
    hops: int,
    order: str = "repeat_last",
) -> tuple[dict[str, npt.NDArray[np.float32]], dict[str, npt.NDArray[np.float32]]]:
    """Per-hop targets and weights from :func:`evidence_targets`' kept slots.

    Hop ``k`` is shown the supporting fact :func:`hop_fact` names, in the file's order (the
    order of the reasoning: bAbI lists a path's steps in walking order); a hop whose fact was
    cut off gets weight 0.
    """
    kept = targets > 0
    hop_rows = {f"{HOP_OUTPUT_PREFIX}{hop}": np.zeros_like(targets) for hop in range(hops)}
    for row, example in enumerate(examples):
        facts = [len(example.statements) - 1 - index for index in example.supporting]
        for hop in range(hops if facts else 0):
            slot = facts[hop_fact(hop, len(facts), order)]
            if 0 <= slot < targets.shape[1] and kept[row, slot]:
                hop_rows[f"{HOP_OUTPUT_PREFIX}{hop}"][row, slot] = 1.0
    weights = {name: (rows.sum(axis=1) > 0).astype(np.float32) for name, rows in hop_rows.items()}
    return hop_rows, weights


def own_hops(arrays: tuple[Arrays, Arrays], hops: int) -> tuple[Arrays, Arrays]:
    """The targets and weights of :func:`hop_targets` for the first ``hops`` hops only."""
    names = {f"{HOP_OUTPUT_PREFIX}{hop}" for hop in range(hops)}
    targets, weights = arrays
    return (
        {name: value for name, value in targets.items() if name in names},
        {name: value for name, value in weights.items() if name in names},
    )


def with_hops(data: PreparedData, arrays: list[tuple[Arrays, Arrays]], hops: int) -> PreparedData:
    """``data`` with the per-hop targets and weights of a model with ``hops`` hops.

    ``arrays`` holds them for :data:`MAX_HOPS` hops (train, validation): the qa task prepares
    its data once per tuning search, while each trial's model has its own ``hops``.
    """

    def replaced(current: Arrays | None, new: Arrays) -> Arrays:
        kept = {
            name: value
            for name, value in (current or {}).items()
            if not name.startswith(HOP_OUTPUT_PREFIX)
        }
        return {**kept, **new}

    (train_targets, train_weights), (val_targets, val_weights) = (
        own_hops(part, hops) for part in arrays
    )
    return replace(
        data,
        train_targets=replaced(data.train_targets, train_targets),
        val_targets=replaced(data.val_targets, val_targets),
        train_weights=replaced(data.train_weights, train_weights),
        val_weights=replaced(data.val_weights, val_weights),
    )


def evidence_accuracy(weights: npt.NDArray[Any], targets: npt.NDArray[Any]) -> float:
    """Share of examples with a kept supporting fact whose heaviest slot is one of them."""
    supervised = targets.sum(axis=1) > 0
    if not supervised.any():
        return 0.0
    heaviest = np.argmax(weights[supervised], axis=1)
    return float(np.mean(targets[supervised][np.arange(len(heaviest)), heaviest] > 0))


def evidence_summary(
    train: dict[str, npt.NDArray[Any]] | None, validation: dict[str, npt.NDArray[Any]] | None
) -> dict[str, Any]:
    """Model-card lines on the supporting-fact supervision (memnet only)."""
    if train is None or validation is None:
        return {}
    return {
        "evidence_target": "supporting facts (bAbI line numbers) -> sentence slots kept after "
        "truncation, multi-hot normalised; facts cut off are dropped",
        "train_examples_with_evidence": int(train[EVIDENCE_OUTPUT].sum()),
        "validation_examples_with_evidence": int(validation[EVIDENCE_OUTPUT].sum()),
    }
