"""The serving spec: what a model version's inputs and heads mean, written by training.

One typed contract, saved as ``assets.extra/serving_spec.json`` in every version, read by the
gateway to build the version's request model, tokenise its texts and turn its output tensors
into readable answers. Training builds a :class:`ServingSpec` and writes it with
``training.export.export_for_serving``; the gateway reads it with :func:`load_spec`. Neither
side spells the JSON by hand.

Tensors (the signature ``signature_name``, ``serving_default`` unless the spec names another;
the gateway checks and calls that one): every input is int32 ``[batch, length]``
of token ids right-padded with ``pad_id`` (``padding: left``: the signature moves it to the
start); every output is float32 (``export_for_serving`` casts a
mixed-precision head; the gateway reads a float16, bfloat16 or float64 one as its values too)
with the shape its head kind gives (``categorical`` / ``multilabel``: ``[batch, len(labels)]``;
``binary``, ``regression``, ``score``: ``[batch]`` or ``[batch, 1]``; ``segment_weights``:
``[batch, max_segments]``).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SPEC_VERSION: Literal[1] = 1
SPEC_FILE = "serving_spec.json"
# Request fields and tensor names: identifiers, so they can be JSON keys, pydantic fields and
# TF signature keys alike (TF Serving's signature keys follow the same rule).
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A label is answered as a value: one of only blanks is an empty line of a labels file.
Label = Annotated[str, Field(pattern=r"\S")]
Truncation = Literal["left", "right"]


class Frozen(BaseModel):
    """Spec parts: unknown keys are errors (a typo in a spec must not be silently ignored).

    Numbers must be finite: JSON has no NaN or Infinity (RFC 8259 section 6), so a spec
    holding one would be written with null in its place and not read back.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class _InputBase(Frozen):
    field: Name = Field(description="Request field that carries this input.")
    tensor: Name = Field(description="Signature input (int32 [batch, length] token ids).")
    description: str = Field(default="", description="Shown in the OpenAPI document.")
    tokenizer: str = Field(
        default="tokenizer.json",
        pattern=r"^[A-Za-z0-9_.-]+\.json$",
        description="A `tokenizers` file in assets.extra/ (a bare file name).",
    )
    max_tokens: int = Field(ge=1, le=1_000_000, description="Longest id row sent to the model.")
    truncation: Truncation = Field(
        default="right", description="Which end of a long text is cut: right keeps the start."
    )
    padding: Truncation = Field(
        default="right",
        description="The side the model was trained with its padding on (Keras pad_sequences "
        "pads the left, 'pre', by default). Requests are padded on the right; for 'left' the "
        "exported signature moves each row's ids to its end.",
    )
    add_special_tokens: bool = Field(
        default=True,
        description="Add the tokenizer's post-processor tokens ([CLS]/[SEP]) after truncation.",
    )
    max_chars: int = Field(default=20_000, ge=1, description="Longest text accepted (422 above).")
    vocab_size: int = Field(
        ge=1,
        description="The model's vocabulary for this input (embedding rows): every id the "
        "tokenizer can produce must be below it, or the version is not routed.",
    )


class TextInput(_InputBase):
    """One string per instance."""

    kind: Literal["text"] = "text"


class TextsInput(_InputBase):
    """A list of strings per instance, joined into one text by ``separator`` (profile posts)."""

    kind: Literal["texts"] = "texts"
    separator: str = Field(min_length=1, description="Token put between items, e.g. [SEP].")
    max_items: int = Field(default=200, ge=1, description="Most items accepted (422 above).")
    max_joined_chars: int | None = Field(
        default=None,
        ge=1,
        description="The joined text is cut here before tokenising, as training did.",
    )


InputSpec = Annotated[TextInput | TextsInput, Field(discriminator="kind")]


class _HeadBase(Frozen):
    output: Name = Field(description="Signature output tensor (float32, or any float width).")
    field: Name = Field(description="Answer field that carries this head's readable value.")
    description: str = ""
    note: str = Field(default="", description="Returned with every answer (e.g. a proxy note).")


class CategoricalHead(_HeadBase):
    """A softmax over ``labels``: answered with the best label and the top ``top_k``."""

    kind: Literal["categorical"] = "categorical"
    labels: list[Label] = Field(min_length=2)
    label_descriptions: list[str] | None = Field(
        default=None, description="One text per label (e.g. the rule behind an income group)."
    )
    top_k: int = Field(default=1, ge=1, description="Candidates returned by default.")

    @model_validator(mode="after")
    def _lengths(self) -> CategoricalHead:
        _unique("label", self.labels)
        if self.label_descriptions is not None and len(self.label_descriptions) != len(self.labels):
            raise ValueError("label_descriptions must have one entry per label")
        if self.top_k > len(self.labels):
            raise ValueError("top_k exceeds the number of labels")
        return self


class BinaryHead(_HeadBase):
    """A sigmoid: the probability of ``labels[1]``; ``labels[0]`` below ``threshold``."""

    kind: Literal["binary"] = "binary"
    labels: tuple[Label, Label] = Field(description="[negative, positive].")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _distinct(self) -> BinaryHead:
        _unique("label", list(self.labels))
        return self


class MultilabelHead(_HeadBase):
    """Independent sigmoids, one per label: every label at or above its threshold applies
    (``thresholds[i]``, else ``threshold``)."""

    kind: Literal["multilabel"] = "multilabel"
    labels: list[Label] = Field(min_length=1)
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    thresholds: list[Annotated[float, Field(ge=0.0, le=1.0)]] | None = Field(
        default=None, description="One per label (tuned on validation data), for threshold."
    )
    top_k: int | None = Field(default=None, ge=1, description="Top labels answered (None: none).")

    @model_validator(mode="after")
    def _distinct(self) -> MultilabelHead:
        # Answers are keyed by label, so two equal labels would silently drop a column.
        _unique("label", self.labels)
        if self.top_k is not None and self.top_k > len(self.labels):
            raise ValueError("top_k exceeds the number of labels")
        if self.thresholds is not None and len(self.thresholds) != len(self.labels):
            raise ValueError("thresholds must have one entry per label")
        return self


class RegressionHead(_HeadBase):
    """A real value in ``unit``: ``raw * scale + offset``, then clipped to ``clip`` if given."""

    kind: Literal["regression"] = "regression"
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _range(self) -> RegressionHead:
        if self.clip is not None and self.clip[0] > self.clip[1]:
            raise ValueError("clip must be [low, high] with low <= high")
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


HeadSpec = Annotated[
    CategoricalHead | BinaryHead | MultilabelHead | RegressionHead | ScoreHead | SegmentWeightsHead,
    Field(discriminator="kind"),
]


class ServingSpec(Frozen):
    """Everything the gateway needs to serve one version of a text model.

    Raises ``pydantic.ValidationError`` when parts contradict each other (duplicate fields or
    tensors, an example that does not name exactly the declared inputs, an evidence head over
    an unknown or list input).
    """

    spec_version: Literal[1] = SPEC_VERSION
    title: str = Field(min_length=1)
    description: str = ""
    signature_name: str = "serving_default"  # the SavedModel signature the gateway calls
    pad_id: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="The id rows are padded with (int32), masked by the model; below every "
        "input's vocab_size.",
    )
    inputs: list[InputSpec] = Field(min_length=1)
    heads: list[HeadSpec] = Field(min_length=1)
    example: dict[str, Any] = Field(
        description="One instance (input field -> value): used by the docs and for warmup."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ServingSpec:
        _unique("input field", [item.field for item in self.inputs])
        _unique("input tensor", [item.tensor for item in self.inputs])
        _unique("head field", [head.field for head in self.heads])
        _unique("head output", [head.output for head in self.heads])
        fields = {item.field: item for item in self.inputs}
        if set(self.example) != set(fields):
            raise ValueError(f"example must give exactly the input fields {sorted(fields)}")
        for name, item in fields.items():
            value = self.example[name]
            if item.kind == "text" and not isinstance(value, str):
                raise ValueError(f"example.{name} must be a string")
            if item.kind == "texts" and not (
                isinstance(value, list) and all(isinstance(text, str) for text in value)
            ):
                raise ValueError(f"example.{name} must be a list of strings")
            # The example is a request the docs offer ("Try it out"): within the input's limits.
            texts = [value] if isinstance(value, str) else value
            if isinstance(item, TextsInput) and not 1 <= len(texts) <= item.max_items:
                raise ValueError(f"example.{name} must have 1 to max_items={item.max_items} items")
            if not all(1 <= len(text) <= item.max_chars for text in texts):
                raise ValueError(
                    f"example.{name}: every text must have 1 to {item.max_chars} chars"
                )
        for head in self.segment_heads():
            target = fields.get(head.input_field)
            if target is None or target.kind != "text":
                raise ValueError(f"head {head.field}: input_field must name a text input")
        return self

    def segment_heads(self) -> tuple[SegmentWeightsHead, ...]:
        """The heads that weigh segments of a text input: the only readers of its
        tokens' character spans (``serving.encoding.segment_texts``)."""
        return tuple(head for head in self.heads if isinstance(head, SegmentWeightsHead))

    def input(self, field: str) -> TextInput | TextsInput:
        """The input declared for a request field (KeyError if none)."""
        return {item.field: item for item in self.inputs}[field]

    def tokenizer_files(self) -> list[str]:
        """The distinct tokenizer files the inputs use, in declaration order."""
        return list(dict.fromkeys(item.tokenizer for item in self.inputs))


def _unique(what: str, names: list[str]) -> None:
    # Counted once: names.count per name took seconds from 20,000 labels (quadratic).
    seen = {name for name, count in Counter(names).items() if count > 1}
    if seen:
        raise ValueError(f"duplicate {what}: {sorted(seen)}")


def load_spec(path: Path) -> ServingSpec:
    """Read ``serving_spec.json``; raises ``OSError`` or ``pydantic.ValidationError``."""
    return ServingSpec.model_validate_json(path.read_bytes())


def dump_spec(spec: ServingSpec) -> str:
    """The spec as indented JSON (what ``serving_spec.json`` holds)."""
    return spec.model_dump_json(indent=2) + "\n"


def is_valid_name(name: str) -> bool:
    """Whether a string may be a request field or tensor name."""
    return re.match(NAME_PATTERN, name) is not None
