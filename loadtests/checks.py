"""Check a gateway answer against the request, so a wrong answer counts as a failed request.

``check_response(endpoint, payload, body)`` returns ``None`` for a good answer or a short
reason. Shapes and value ranges are pydantic models (the public API of issue 4); the rest
(counts, ordering, agreement between fields) is checked against the request.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError

from loadtests.payloads import Payload, instances_of
from serving.contract import INCOME_GROUPS

Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
SUM_TOLERANCE = 1e-3
MAX_AGE_YEARS = 120.0


class ModelRef(BaseModel):
    """The model and version that answered."""

    name: StrictStr
    version: StrictInt


class Candidate(BaseModel):
    """One possible answer and its probability."""

    answer: StrictStr
    probability: Probability


class QaAnswer(BaseModel):
    """The answer to one question."""

    answer: StrictStr
    confidence: Probability
    candidates: list[Candidate] = Field(min_length=1)


class IncomeGroup(BaseModel):
    """The predicted income group and the distribution over all groups."""

    group: StrictInt
    label: StrictStr
    probabilities: list[Probability] = Field(min_length=INCOME_GROUPS, max_length=INCOME_GROUPS)


class Gender(BaseModel):
    """The predicted gender label and its probability."""

    label: Literal["female", "male"]
    probability: Probability


class Profile(BaseModel):
    """The profile of one person."""

    age: Annotated[float, Field(strict=True, allow_inf_nan=False)]
    income_group: IncomeGroup
    gender: Gender


class Single(BaseModel):
    """Any single answer: the model that gave it."""

    model: ModelRef


class Batch(BaseModel):
    """Any batch answer: one prediction per instance and the model that gave them."""

    predictions: list[dict[str, Any]]
    model: ModelRef


class Similarity(BaseModel):
    """Scores of the pairs, in request order."""

    scores: list[Probability]
    model: ModelRef


def check_qa(request: Payload, answer: dict[str, Any]) -> str | None:
    """Check one question's answer: shape, ranges, top_k, order and agreement."""
    parsed = QaAnswer.model_validate(answer)
    probabilities = [candidate.probability for candidate in parsed.candidates]
    if len(parsed.candidates) > int(request.get("top_k", 1)):
        return f"{len(parsed.candidates)} candidates for top_k={request.get('top_k', 1)}"
    if probabilities != sorted(probabilities, reverse=True):
        return "candidates not sorted by probability"
    best = parsed.candidates[0]
    if parsed.answer != best.answer or not math.isclose(parsed.confidence, best.probability):
        return "answer/confidence differ from the best candidate"
    return None


def check_profile(request: Payload, answer: dict[str, Any]) -> str | None:
    """Check one profile: ranges, a distribution that sums to 1, the group is its argmax."""
    parsed = Profile.model_validate(answer)
    income = parsed.income_group
    if not math.isclose(sum(income.probabilities), 1.0, abs_tol=SUM_TOLERANCE):
        return f"income probabilities sum to {sum(income.probabilities):.4f}"
    if income.probabilities[income.group] != max(income.probabilities):
        return f"income group {income.group} is not the most probable"
    if not 0.0 <= parsed.age <= MAX_AGE_YEARS:
        return f"age {parsed.age} out of range"
    return None


Checker = Callable[[Payload, dict[str, Any]], "str | None"]
CHECKERS: dict[str, Checker] = {"qa": check_qa, "profile": check_profile}


def check_predictions(model: str, payload: Payload, body: dict[str, Any]) -> str | None:
    """Check a qa or profile answer, single or batch, one prediction per instance."""
    instances = instances_of(payload)
    if "instances" in payload:
        batch = Batch.model_validate(body)
        reference, predictions = batch.model, batch.predictions
    else:
        reference, predictions = Single.model_validate(body).model, [body]
    if reference.name != model:
        return f"answered by model {reference.name!r}"
    if len(predictions) != len(instances):
        return f"{len(predictions)} predictions for {len(instances)} instances"
    for request, prediction in zip(instances, predictions, strict=True):
        problem = CHECKERS[model](request, prediction)
        if problem:
            return problem
    return None


def check_similarity(payload: Payload, body: dict[str, Any]) -> str | None:
    """Check one score in [0, 1] per pair, from the similarity model."""
    parsed = Similarity.model_validate(body)
    if parsed.model.name != "similarity":
        return f"answered by model {parsed.model.name!r}"
    if len(parsed.scores) != len(payload["pairs"]):
        return f"{len(parsed.scores)} scores for {len(payload['pairs'])} pairs"
    return None


def check_response(model: str, payload: Payload, body: Any) -> str | None:
    """``None`` when body is a correct answer of model to payload, else the reason."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    try:
        if model == "similarity":
            return check_similarity(payload, body)
        return check_predictions(model, payload, body)
    except ValidationError as error:
        return "bad shape: " + "; ".join(describe(item) for item in error.errors()[:3])


def describe(error: Any) -> str:
    """One pydantic error as ``field.path: message``."""
    location: Sequence[Any] = error.get("loc", ())
    return ".".join(str(part) for part in location) + ": " + str(error.get("msg", ""))


# Any served model (loadtests/served_models.py): the answer of its spec's example.
def routed_examples(details: dict[str, Any]) -> dict[str, tuple[dict[str, Any], list[str]]]:
    """``{name: (example, head fields)}`` from the ``GET /v1/models/NAME`` answers by name
    (a model without a routed version has no ``spec`` there and is left out)."""
    return {
        name: (detail["spec"]["example"], [head["field"] for head in detail["spec"]["heads"]])
        for name, detail in details.items()
        if isinstance(detail.get("spec"), dict)
    }


def check_model_answer(
    name: str, fields: list[str], payload: dict[str, Any], body: Any
) -> str | None:
    """None for an answer that fits the request, else a short reason (a failed request)."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), dict):
        return "no model in the answer"
    if body["model"].get("name") != name:
        return f"answered by {body['model'].get('name')!r}, not {name!r}"
    if "instances" in payload:
        answers = body.get("predictions")
        if not isinstance(answers, list) or len(answers) != len(payload["instances"]):
            return "not one prediction per instance"
    else:
        answers = [body.get("outputs")]
    for answer in answers:
        if not isinstance(answer, dict) or sorted(answer) != sorted(fields):
            return f"answer fields are not the heads' {sorted(fields)}"
    return None


def add_api_key_option(parser: Any) -> None:
    """``--api-key`` (default ``$LOADTEST_API_KEY``): the key a gateway with
    ``GATEWAY_API_KEYS`` wants; every request of the users was a 401 without it. The variable
    keeps the key off the command line (``ps`` shows it to every user of the machine).
    Added once: both locustfiles' option hooks call this on one parser (an argument group
    shares its parser's actions)."""
    if any("--api-key" in action.option_strings for action in parser._actions):
        return
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LOADTEST_API_KEY", ""),
        help="gateway API key (default: $LOADTEST_API_KEY)",
    )


def authorize(headers: MutableMapping[str, str | bytes], key: str) -> None:
    """Send ``key`` as the gateway reads it (``Authorization: Bearer``), if there is one."""
    if key:
        headers["Authorization"] = f"Bearer {key}"


def post_checked(
    client: Any, path: str, payload: Any, name: str, check: Callable[[Any], str | None]
) -> None:
    """POST ``payload`` with a locust ``client``; the request fails when the answer is no 200,
    its body no JSON, or ``check(body)`` names a problem (a wrong answer is a failure)."""
    with client.post(path, json=payload, name=name, catch_response=True) as response:
        if response.status_code != 200:
            response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return
        try:
            body: Any = response.json()
        except ValueError:
            response.failure("body is not JSON")
            return
        problem = check(body)
        if problem:
            response.failure(problem)
        else:
            response.success()
