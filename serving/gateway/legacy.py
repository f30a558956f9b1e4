"""Versions exported before the serving spec: their preprocessing.json + labels.json as a spec.

qa, profile and similarity versions written before ``assets.extra/serving_spec.json`` existed
carry ``preprocessing.json`` (input lengths, truncation, post separator, character cut) and
``labels.json`` (see :mod:`serving.contract`). :func:`legacy_spec` turns them into the
equivalent :class:`~serving.spec.ServingSpec`, with the request and answer field names of the
API those versions were served with, so they are read, checked and answered like any other
version. Only these three model names have a legacy layout; any other model needs a spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from serving.contract import PAD_ID, SIGNATURES
from serving.spec import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    InputSpec,
    RegressionHead,
    ScoreHead,
    ServingSpec,
    TextInput,
    TextsInput,
)

EXAMPLES: dict[str, dict[str, Any]] = {
    "qa": {
        "article": "Mary moved to the bathroom. John went to the hallway.",
        "question": "Where is Mary?",
    },
    "profile": {"posts": ["Finished my thesis draft today.", "Work was long today."]},
    "similarity": {"text_a": "A plane is taking off.", "text_b": "An air plane is taking off."},
}


class LegacyError(ValueError):
    """The legacy files do not describe the model (unknown name, missing keys)."""


def legacy_spec(
    model: str, preprocessing: Mapping[str, Any], labels: Mapping[str, Any], vocab_size: int
) -> ServingSpec:
    """The spec equivalent to a legacy version's files.

    ``vocab_size`` is the tokenizer's vocabulary size (legacy versions did not record the
    embedding size; their tokenizer was the one the embedding was built for). Raises
    :class:`LegacyError` for a model without a legacy layout or files lacking a key, and
    ``pydantic.ValidationError`` if the converted values break the spec's rules.
    """
    if model not in SIGNATURES:
        raise LegacyError(f"model {model!r} has no legacy layout; it needs a serving spec")
    try:
        inputs, heads, title = _BUILDERS[model](preprocessing, labels, vocab_size)
    except (KeyError, TypeError, ValueError, StopIteration) as error:
        raise LegacyError(f"legacy files of {model!r} lack a value: {error!r}") from error
    return ServingSpec(
        title=title,
        description="Converted from a version exported before serving_spec.json.",
        pad_id=int(preprocessing.get("pad_id", PAD_ID)),
        inputs=inputs,
        heads=heads,
        example=EXAMPLES[model],
    )


Parts = tuple[list[InputSpec], list[HeadSpec], str]


def _text(
    preprocessing: Mapping[str, Any], tensor: str, field: str, vocab_size: int, description: str
) -> TextInput:
    length = preprocessing["inputs"][tensor]
    return TextInput(
        field=field,
        tensor=tensor,
        description=description,
        max_tokens=int(length["max_length"]),
        truncation="left" if length.get("truncation") == "left" else "right",
        vocab_size=vocab_size,
    )


def _qa(preprocessing: Mapping[str, Any], labels: Mapping[str, Any], vocab: int) -> Parts:
    inputs: list[InputSpec] = [
        _text(preprocessing, "article_ids", "article", vocab, "The story (bAbI style)."),
        _text(preprocessing, "question_ids", "question", vocab, "A question answered by a word."),
    ]
    answers = [str(answer) for answer in labels["answers"]]
    heads: list[HeadSpec] = [
        CategoricalHead(output="answer_probs", field="answer", labels=answers, top_k=1)
    ]
    return inputs, heads, "Question answering over a story"


def _profile(preprocessing: Mapping[str, Any], labels: Mapping[str, Any], vocab: int) -> Parts:
    length = preprocessing["inputs"]["post_ids"]
    max_chars = preprocessing.get("max_chars")
    posts = TextsInput(
        field="posts",
        tensor="post_ids",
        description="The person's posts, any order.",
        max_tokens=int(length["max_length"]),
        truncation="left" if length.get("truncation") == "left" else "right",
        vocab_size=vocab,
        separator=str(preprocessing.get("post_separator", "[SEP]")),
        max_joined_chars=None if max_chars is None else int(max_chars),
    )
    groups = list(labels["income_groups"])
    gender = labels["gender"]
    positive = str(gender["positive"])
    negative = next(str(label) for label in gender["labels"] if str(label) != positive)
    note = str(labels.get("income_note", "")) if labels.get("income_is_proxy", True) else ""
    heads: list[HeadSpec] = [
        RegressionHead(
            output="age", field="age", unit=str(labels.get("age", {}).get("unit", "years"))
        ),
        CategoricalHead(
            output="income_probs",
            field="income_group",
            labels=[str(group["label"]) for group in groups],
            label_descriptions=[str(group.get("rule", "")) for group in groups],
            note=note,
            description="Income group (a proxy when note is set).",
        ),
        BinaryHead(output="gender_prob", field="gender", labels=(negative, positive)),
    ]
    return [posts], heads, "Age, income group and gender from posts"


def _similarity(preprocessing: Mapping[str, Any], labels: Mapping[str, Any], vocab: int) -> Parts:
    inputs: list[InputSpec] = [
        _text(preprocessing, "left_ids", "text_a", vocab, "The first sentence."),
        _text(preprocessing, "right_ids", "text_b", vocab, "The second sentence."),
    ]
    score = labels.get("score", {})
    low, high = score.get("range", (0.0, 1.0))
    heads: list[HeadSpec] = [
        ScoreHead(
            output="score",
            field="score",
            range=(float(low), float(high)),
            meaning=str(score.get("meaning", "")),
        )
    ]
    return inputs, heads, "Semantic similarity of two sentences"


_BUILDERS = {"qa": _qa, "profile": _profile, "similarity": _similarity}
