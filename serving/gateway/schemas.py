"""Fixed response bodies of the public API (request models are generated per version).

The alias endpoints (``/v1/qa``, ``/v1/profile``, ``/v1/similarity``) keep the answer shapes
of the first API; the generic ``:predict`` shapes come from each version's spec
(:mod:`serving.gateway.request_models`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from serving.gateway.answers import Absent, given
from serving.gateway.request_models import ModelRef

__all__ = ["ModelRef"]


class Candidate(BaseModel):
    """One possible answer and its probability."""

    answer: str
    probability: float


class Evidence(BaseModel):
    """A segment of the story (a sentence, as the spec's separator ends it) and its weight."""

    segment: str = Field(description="The segment's text, as in the head's answer on :predict.")
    sentence: str = Field(
        description="The same text under the first API's name, kept for its clients."
    )
    weight: float


class QAAnswer(BaseModel):
    """The most likely answer, its probability, the top-k candidates (and evidence)."""

    answer: str
    confidence: float
    candidates: list[Candidate]
    evidence: list[Evidence] | Absent = given()


class QAResponse(QAAnswer):
    """Answer to one QA request."""

    model: ModelRef


class IncomeGroup(BaseModel):
    """The predicted income group (a proxy: see ``note``)."""

    group: int
    label: str
    probabilities: list[float]
    is_proxy: bool
    note: str


class Gender(BaseModel):
    """The predicted gender label and its probability."""

    label: str
    probability: float


class AgeBand(BaseModel):
    """The most probable age band (<20, 20-29, 30+), its probability and every band's."""

    label: str
    probability: float
    probabilities: dict[str, float]


class ProfileAnswer(BaseModel):
    """Age in years, income group and gender predicted from posts (and the age band, from
    versions with an age-band head)."""

    age: float
    income_group: IncomeGroup
    gender: Gender
    age_band: AgeBand | Absent = given()


class ProfileResponse(ProfileAnswer):
    """Answer to one profile request."""

    model: ModelRef


class SimilarityResponse(BaseModel):
    """One score in [0, 1] per pair, in request order."""

    scores: list[float]
    model: ModelRef


class QABatchResponse(BaseModel):
    """Answers in request order."""

    predictions: list[QAAnswer]
    model: ModelRef


class ProfileBatchResponse(BaseModel):
    """Answers in request order."""

    predictions: list[ProfileAnswer]
    model: ModelRef


ALIAS_RESPONSES: dict[str, list[type[BaseModel]]] = {
    "qa": [QAResponse, QABatchResponse],
    "profile": [ProfileResponse, ProfileBatchResponse],
    "similarity": [SimilarityResponse],
}


class ErrorResponse(BaseModel):
    """Every error: a message and a list of details (``loc`` names the offending field)."""

    error: str
    detail: list[dict[str, object]]


class VersionInfo(BaseModel):
    """One served version of a model; ``error`` says (briefly) why it is not routed.

    ``tokenizers_sha256``: each tokenizer file the version's inputs use -> its sha256 (hex);
    ``tokenizer_sha256``: that digest when the version has one tokenizer, else None.
    """

    version: int
    state: str
    error: str = ""
    tokenizer_sha256: str | None = None
    tokenizers_sha256: dict[str, str] = Field(default_factory=dict)
    routed: bool = False


class ModelInfo(BaseModel):
    """A model's versions and the signature of the version requests go to."""

    name: str
    versions: list[VersionInfo]
    signature: dict[str, object] | None = None
    error: str | None = None


class ModelDetail(ModelInfo):
    """A model with the serving spec of its routed version (``legacy``: converted files)."""

    spec: dict[str, Any] | None = None
    legacy: bool | None = None


class ModelsResponse(BaseModel):
    """Every model the gateway routes to."""

    models: list[ModelInfo]
