"""Request and response bodies of the public API (the source of ``/openapi.json``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _valid_unicode(text: str) -> str:
    # JSON may carry lone surrogates ("\ud800"); the tokenizer cannot encode them.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError("text contains invalid Unicode (a lone surrogate)") from error
    return text


Text = Annotated[str, Field(min_length=1), AfterValidator(_valid_unicode)]


class Strict(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class QARequest(Strict):
    """A story and a question about it."""

    article: Text = Field(description="The story (bAbI style).")
    question: Text = Field(description="A question answered by one word.")
    top_k: int = Field(default=1, ge=1, description="How many candidate answers to return.")


class QABatchRequest(Strict):
    """Several QA requests answered with one model call."""

    instances: list[QARequest] = Field(min_length=1)


class ProfileRequest(Strict):
    """A person's blog posts."""

    posts: list[Annotated[str, AfterValidator(_valid_unicode)]] = Field(
        min_length=1, description="The person's posts, any order."
    )


class ProfileBatchRequest(Strict):
    """Several people's posts answered with one model call."""

    instances: list[ProfileRequest] = Field(min_length=1)


class SentencePair(Strict):
    """Two sentences to compare."""

    text_a: Text
    text_b: Text


class SimilarityRequest(Strict):
    """Sentence pairs to score."""

    pairs: list[SentencePair] = Field(min_length=1)


class ModelRef(BaseModel):
    """The model version that produced an answer."""

    name: str
    version: int


class Candidate(BaseModel):
    """One possible answer and its probability."""

    answer: str
    probability: float


class QAAnswer(BaseModel):
    """The most likely answer, its probability and the top-k candidates."""

    answer: str
    confidence: float
    candidates: list[Candidate]


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


class ProfileAnswer(BaseModel):
    """Age in years, income group and gender predicted from posts."""

    age: float
    income_group: IncomeGroup
    gender: Gender


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


class ErrorResponse(BaseModel):
    """Every error: a message and a list of details (``loc`` names the offending field)."""

    error: str
    detail: list[dict[str, object]]


class VersionInfo(BaseModel):
    """One served version of a model."""

    version: int
    state: str
    error: str = ""
    tokenizer_sha256: str | None = None
    routed: bool = False


class ModelInfo(BaseModel):
    """A model's versions and the signature of the version requests go to."""

    name: str
    versions: list[VersionInfo]
    signature: dict[str, object] | None = None
    error: str | None = None


class ModelsResponse(BaseModel):
    """Every model the gateway routes to."""

    models: list[ModelInfo]
