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
``[batch, max_segments]``; ``token_labels``: ``[batch, tokens, len(labels)]``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from serving.spec_base import (
    NAME_PATTERN,
    Frozen,
    Name,
    RequiredText,
    Truncation,
    unique,
)
from serving.spec_heads import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    RegressionHead,
    ScoreHead,
    SegmentRule,
    SegmentWeightsHead,
    TokenLabelsHead,
)

__all__ = [
    "NAME_PATTERN",
    "SPEC_FILE",
    "SPEC_VERSION",
    "BinaryHead",
    "CategoricalHead",
    "HeadSpec",
    "InputSpec",
    "MultilabelHead",
    "RegressionHead",
    "ScoreHead",
    "SegmentRule",
    "SegmentWeightsHead",
    "ServingSpec",
    "TextInput",
    "TextsInput",
    "TokenLabelsHead",
    "Truncation",
    "dump_spec",
    "instance_problem",
    "is_valid_name",
    "load_spec",
]

SPEC_VERSION: Literal[1] = 1
SPEC_FILE = "serving_spec.json"


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


class ServingSpec(Frozen):
    """Everything the gateway needs to serve one version of a text model.

    Raises ``pydantic.ValidationError`` when parts contradict each other (duplicate fields or
    tensors, an example that does not name exactly the declared inputs, an evidence head over
    an unknown or list input).
    """

    spec_version: Literal[1] = SPEC_VERSION
    title: RequiredText
    description: str = ""
    # The SavedModel signature the gateway calls: "" is refused, not TF Serving's default.
    signature_name: RequiredText = "serving_default"
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
        unique("input field", [item.field for item in self.inputs])
        unique("input tensor", [item.tensor for item in self.inputs])
        unique("head field", [head.field for head in self.heads])
        unique("head output", [head.output for head in self.heads])
        fields = {item.field: item for item in self.inputs}
        if (problem := instance_problem(self.inputs, self.example, "example")) is not None:
            raise ValueError(problem)
        for head in self.span_heads():
            target = fields.get(head.input_field)
            if target is None or target.kind != "text":
                # Name what is there: "must name a text input" left a typo to be guessed.
                texts = [name for name, item in fields.items() if item.kind == "text"]
                found = "no input field" if target is None else "a list input (texts)"
                raise ValueError(
                    f"head {head.field}: input_field must name a text input; "
                    f"{head.input_field!r} is {found} (text inputs: {texts})"
                )
        return self

    def segment_heads(self) -> tuple[SegmentWeightsHead, ...]:
        """The heads that weigh segments of a text input: the only readers of its
        tokens' character spans (``serving.encoding.segment_texts``)."""
        return tuple(head for head in self.heads if isinstance(head, SegmentWeightsHead))

    def token_heads(self) -> tuple[TokenLabelsHead, ...]:
        """The heads that label each token of a text input (answered with character spans)."""
        return tuple(head for head in self.heads if isinstance(head, TokenLabelsHead))

    @cached_property
    def span_fields(self) -> frozenset[str]:
        """The input fields whose tokens' character spans some head reads (computed once per
        spec: every request's encoding asks)."""
        return frozenset(head.input_field for head in self.span_heads())

    def span_heads(self) -> tuple[SegmentWeightsHead | TokenLabelsHead, ...]:
        """The segment and token heads, in declaration order."""
        return (*self.segment_heads(), *self.token_heads())

    def input(self, field: str) -> TextInput | TextsInput:
        """The input declared for a request field (KeyError if none)."""
        return {item.field: item for item in self.inputs}[field]

    def tokenizer_files(self) -> list[str]:
        """The distinct tokenizer files the inputs use, in declaration order."""
        return list(dict.fromkeys(item.tokenizer for item in self.inputs))


def load_spec(path: Path) -> ServingSpec:
    """Read ``serving_spec.json``; raises ``OSError`` or ``pydantic.ValidationError``."""
    return ServingSpec.model_validate_json(path.read_bytes())


def dump_spec(spec: ServingSpec) -> str:
    """The spec as indented JSON (what ``serving_spec.json`` holds)."""
    return spec.model_dump_json(indent=2) + "\n"


def is_valid_name(name: str) -> bool:
    """Whether a string may be a request field or tensor name."""
    return re.match(NAME_PATTERN, name) is not None


def instance_problem(
    inputs: Sequence[TextInput | TextsInput], instance: object, name: str
) -> str | None:
    """What keeps ``instance`` from being a request instance of these inputs (exactly their
    fields, a string for a ``text`` input, a list of strings for ``texts``, within their
    limits), as a message starting with ``name``; None when it is one. The spec's example
    and ``export_for_serving``'s ``warmup_instances`` are checked alike."""
    if not isinstance(instance, Mapping):
        return f"{name} must be an object of the input fields, not {type(instance).__name__}"
    fields = {item.field: item for item in inputs}
    if set(instance) != set(fields):
        return f"{name} must give exactly the input fields {sorted(fields)}" + _example_keys(
            sorted(map(str, instance)), sorted(fields)
        )
    for field, item in fields.items():
        value = instance[field]
        if item.kind == "text" and not isinstance(value, str):
            return f"{name}.{field} must be a string"
        if item.kind == "texts" and not (
            isinstance(value, list) and all(isinstance(text, str) for text in value)
        ):
            return f"{name}.{field} must be a list of strings"
        # The example is a request the docs offer ("Try it out"): within the input's limits.
        texts = [value] if isinstance(value, str) else value
        if isinstance(item, TextsInput) and not 1 <= len(texts) <= item.max_items:
            return f"{name}.{field} must have 1 to max_items={item.max_items} items"
        if not all(1 <= len(text) <= item.max_chars for text in texts):
            return f"{name}.{field}: every text must have 1 to {item.max_chars} chars"
    return None


def _example_keys(given: list[str], fields: list[str]) -> str:
    """What is wrong with an example's keys: the fields it lacks, the keys no input has
    (with the closest field: ``titel`` -> ``title``)."""
    text = ""
    if missing := [name for name in fields if name not in given]:
        text += f"; missing {missing}"
    for name in (name for name in given if name not in fields):
        close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
        text += f"; {name!r} is no input field" + (
            f" (did you mean {close[0]!r}?)" if close else ""
        )
    return text
