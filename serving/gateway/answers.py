"""The readable value of each head kind, as pydantic models (the response schemas of the
OpenAPI document; :mod:`serving.gateway.heads` builds the values)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from serving.spec import (
    BinaryHead,
    CategoricalHead,
    HeadSpec,
    MultilabelHead,
    RegressionHead,
    SegmentWeightsHead,
    TokenLabelsHead,
)

# A text the answer has only when the spec gives one (a note, a label's description): the
# key is left out otherwise, never "" nor null, so the schema says "a non-empty string, not
# required" (the None default is the model's, kept out of the schema). Any other key an
# answer may leave out (candidates, evidence, an age band) is typed ``X | Absent`` with
# ``given()`` alike: ``X | None`` documented a null no answer holds.
Text = Annotated[str, Field(min_length=1)]
Absent = SkipJsonSchema[None]
IfGiven = Text | Absent


def _absent(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # "default": null would read as a null the answer may hold


def given() -> Any:
    """The field of a key an answer has or leaves out (never null), not required."""
    return Field(default=None, json_schema_extra=_absent)


class Candidate(BaseModel):
    """One label and its probability."""

    label: str
    probability: float


class CategoricalAnswer(BaseModel):
    """The most probable label, every label's probability, and the top-k candidates."""

    label: str
    probability: float
    probabilities: dict[str, float]
    candidates: list[Candidate]
    description: IfGiven = given()
    note: IfGiven = given()


class BinaryAnswer(BaseModel):
    """The label decided by the threshold and the probability of that label."""

    label: str
    probability: float
    note: IfGiven = given()


class MultilabelAnswer(BaseModel):
    """Every label at or above the threshold, each label's probability, and the top-k labels
    when the spec or the request gives ``top_k``."""

    labels: list[str]
    probabilities: dict[str, float]
    candidates: list[Candidate] | Absent = given()
    note: IfGiven = given()


class ValueAnswer(BaseModel):
    """A real value (a score head's, or a regression head's whose spec gives no unit: no
    ``unit`` key; it was ``"unit": ""``)."""

    value: float
    note: IfGiven = given()


class UnitValueAnswer(ValueAnswer):
    """A regression head's value in the unit its spec gives (always answered)."""

    unit: Text


class SegmentWeight(BaseModel):
    """A piece of an input text and the weight the model gave it."""

    segment: str
    weight: float


class LabelledSpan(BaseModel):
    """A word (or token) of the input text, or an entity of several, and its label.

    ``start``/``end``: character offsets into the text as sent (Python string indices, code
    points), ``text == input[start:end]``; ``score``: the label's probability (an entity's:
    the mean of its words')."""

    text: str
    start: int
    end: int
    label: str
    score: float


class TokenLabelsAnswer(BaseModel):
    """The labelled words in text order (those labelled the spec's ``outside_label`` left
    out) and whether the text was cut before the model (its rest is not labelled)."""

    words: list[LabelledSpan]
    truncated: bool
    note: IfGiven = given()


class TokenEntitiesAnswer(TokenLabelsAnswer):
    """A ``scheme: "IOB2"`` head's answer: the labelled words and their entity spans (only
    these heads answer ``entities``, so only their schema lists it)."""

    entities: list[LabelledSpan]


def answer_model(head: HeadSpec) -> Any:
    """The pydantic type of a head's readable value (for request/response schemas)."""
    if isinstance(head, CategoricalHead):
        return CategoricalAnswer
    if isinstance(head, BinaryHead):
        return BinaryAnswer
    if isinstance(head, MultilabelHead):
        return MultilabelAnswer
    if isinstance(head, SegmentWeightsHead):
        return list[SegmentWeight]
    if isinstance(head, TokenLabelsHead):
        return TokenEntitiesAnswer if head.scheme == "IOB2" else TokenLabelsAnswer
    if isinstance(head, RegressionHead) and head.unit:
        return UnitValueAnswer
    return ValueAnswer
