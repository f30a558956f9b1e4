"""The head kinds of the serving spec: how each output tensor is read into an answer.

Split from :mod:`serving.spec` (which re-exports every name); shapes per kind are listed in
its docstring.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from serving.spec_base import Frozen, Label, Name, OptionalText, unique


class _HeadBase(Frozen):
    output: Name = Field(description="Signature output tensor (float32, or any float width).")
    field: Name = Field(description="Answer field that carries this head's readable value.")
    description: str = ""
    note: OptionalText = Field(
        default="", description="Returned with every answer (e.g. a proxy note); '' = none."
    )


class CategoricalHead(_HeadBase):
    """A softmax over ``labels``: answered with the best label and the top ``top_k``."""

    kind: Literal["categorical"] = "categorical"
    labels: list[Label] = Field(min_length=2)
    label_descriptions: list[OptionalText] | None = Field(
        default=None,
        description="One text per label (e.g. the rule behind an income group); '' = none "
        "(the answer then has no description).",
    )
    top_k: int = Field(default=1, ge=1, description="Candidates returned by default.")

    @model_validator(mode="after")
    def _lengths(self) -> CategoricalHead:
        unique("label", self.labels)
        if self.label_descriptions is not None and len(self.label_descriptions) != len(self.labels):
            raise ValueError("label_descriptions must have one entry per label")
        if self.top_k > len(self.labels):
            raise ValueError("top_k exceeds the number of labels")
        return self


class BinaryHead(_HeadBase):
    """A sigmoid: the probability of ``labels[1]``; ``labels[0]`` below ``threshold``."""

    kind: Literal["binary"] = "binary"
    labels: tuple[Label, Label] = Field(description="[negative, positive].")
    # Above 0: at 0 every probability reaches it, so every answer was labels[1] whatever the
    # model said (found by the adversarial repo pass 11, as a regression head's scale of 0).
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _distinct(self) -> BinaryHead:
        unique("label", list(self.labels))
        return self


class MultilabelHead(_HeadBase):
    """Independent sigmoids, one per label: every label at or above its threshold applies
    (``thresholds[i]``, else ``threshold``)."""

    kind: Literal["multilabel"] = "multilabel"
    labels: list[Label] = Field(min_length=1)
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)  # above 0, as a binary head's
    thresholds: list[Annotated[float, Field(gt=0.0, le=1.0)]] | None = Field(
        default=None, description="One per label (tuned on validation data), for threshold."
    )
    top_k: int | None = Field(default=None, ge=1, description="Top labels answered (None: none).")

    @model_validator(mode="after")
    def _distinct(self) -> MultilabelHead:
        # Answers are keyed by label, so two equal labels would silently drop a column.
        unique("label", self.labels)
        if self.top_k is not None and self.top_k > len(self.labels):
            raise ValueError("top_k exceeds the number of labels")
        if self.thresholds is not None and len(self.thresholds) != len(self.labels):
            raise ValueError("thresholds must have one entry per label")
        return self


class RegressionHead(_HeadBase):
    """A real value in ``unit``: ``raw * scale + offset``, then clipped to ``clip`` if given."""

    kind: Literal["regression"] = "regression"
    unit: OptionalText = Field(default="", description="e.g. 'years'; '' = none (no unit key).")
    scale: float = 1.0
    offset: float = 0.0
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _range(self) -> RegressionHead:
        # A scale of 0 or a clip of one point answers the same value for every text (the
        # offset, the point), whatever the model says: a head that reads nothing, served as
        # a 200 (found by the adversarial repo pass 11). As the score head's range.
        if self.scale == 0:
            raise ValueError("scale must not be 0 (every answer would be the offset)")
        if self.clip is not None and self.clip[0] >= self.clip[1]:
            raise ValueError("clip must be [low, high] with low < high")
        return self


class ScoreHead(_HeadBase):
    """A bounded score (e.g. similarity in [0, 1]); values outside ``range`` are clipped."""

    kind: Literal["score"] = "score"
    range: tuple[float, float] = (0.0, 1.0)
    meaning: str = ""

    @model_validator(mode="after")
    def _range(self) -> ScoreHead:
        if self.range[0] >= self.range[1]:
            raise ValueError("range must be [low, high] with low < high")
        return self


class SegmentRule(Frozen):
    """How a text is cut into the segments a ``segment_weights`` head weighs.

    Applied to the text's encoding *after* truncation to the input's ``max_tokens``: a
    segment is a maximal run of tokens ending with ``separator_token`` (included) or with the
    last token. Segments are numbered from the end when ``order`` is ``"last_first"`` (index
    0 = the last segment, as a memory network that keeps the latest sentences does), else
    from the start; only the first ``max_segments`` of that numbering exist for the model.
    The same rule is used by training (to supervise the weights) and by the gateway (to map
    weights back to text): :func:`serving.encoding.segment_texts`.
    """

    separator_token: str = Field(min_length=1, description="e.g. '.' for sentences.")
    order: Literal["first_first", "last_first"] = "first_first"
    max_segments: int = Field(ge=1, le=4096)


class SegmentWeightsHead(_HeadBase):
    """Weights over the segments of one text input (attention as evidence): ``[batch, S]``."""

    kind: Literal["segment_weights"] = "segment_weights"
    input_field: Name = Field(description="The request field (a text input) whose segments.")
    rule: SegmentRule
    top_k: int = Field(default=3, ge=1, description="Segments returned, heaviest first.")


class TokenLabelsHead(_HeadBase):
    """One label distribution per token of one text input (a tagger: NER, POS, chunking):
    output float ``[batch, tokens, len(labels)]``, a softmax over ``labels`` at each id
    position of the input's row (the row the gateway sent: right-padded, special tokens
    included; ``tokens`` may exceed its length, a batch's longest or a fixed-length input).

    Answered per word of the client's text with character offsets (``start``, ``end``) into
    it. A word is one piece of the tokenizer's pre-tokenizer (``Encoding.word_ids``: whitespace
    and punctuation split words for a BERT tokenizer); with ``aggregation: "first"`` it takes
    the label and score of its first sub-token, as Hugging Face's token-classification
    pipeline's ``aggregation_strategy="first"`` does for word-aware tokenizers
    (``transformers.TokenClassificationPipeline``); ``"none"`` answers each token on its
    own. Special tokens and padding are never labelled; tokens cut by truncation are not
    labelled and the answer says ``truncated``; with ``"first"``, neither is a word the cut
    splits (its first sub-token gone, or only a fragment of it kept). Words labelled
    ``outside_label`` (e.g. ``"O"``) are left out of the answer; with ``scheme: "IOB2"``
    (labels ``B-X``/``I-X`` besides ``outside_label``) the words are also grouped into entity
    spans, as ``seqeval``'s IOB2 reading: ``B-X`` starts an ``X`` span, ``I-X`` continues an
    ``X`` span (and starts one after anything else).
    """

    kind: Literal["token_labels"] = "token_labels"
    input_field: Name = Field(description="The request field (a text input) whose tokens.")
    labels: list[Label] = Field(min_length=2)
    aggregation: Literal["first", "none"] = Field(
        default="first",
        description="first: a word takes its first sub-token's label (Hugging Face's "
        "aggregation_strategy='first'); none: every token answered alone.",
    )
    outside_label: Label | None = Field(
        default=None, description="A label left out of the answer (the 'O' of IOB tagging)."
    )
    scheme: Literal["IOB2"] | None = Field(
        default=None, description="IOB2: labeled words are also grouped into entity spans."
    )

    @model_validator(mode="after")
    def _labels(self) -> TokenLabelsHead:
        unique("label", self.labels)
        if self.outside_label is not None and self.outside_label not in self.labels:
            raise ValueError("outside_label must be one of labels")
        if self.scheme == "IOB2":
            if self.outside_label is None:
                raise ValueError("scheme IOB2 needs outside_label (its 'O' label)")
            odd = [
                label
                for label in self.labels
                if label != self.outside_label and not label.startswith(("B-", "I-"))
            ]
            if odd:
                raise ValueError(f"scheme IOB2: labels {odd[:5]} are not B-X or I-X")
            # "B-" alone would answer entities of label "" (seqeval reads its type as "_").
            bare = [
                label
                for label in self.labels
                if label != self.outside_label and not label[2:].strip()
            ]
            if bare:
                raise ValueError(f"scheme IOB2: labels {bare[:5]} name no entity type X")
        return self


HeadSpec = Annotated[
    CategoricalHead
    | BinaryHead
    | MultilabelHead
    | RegressionHead
    | ScoreHead
    | SegmentWeightsHead
    | TokenLabelsHead,
    Field(discriminator="kind"),
]
