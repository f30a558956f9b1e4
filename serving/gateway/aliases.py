"""``/v1/qa``, ``/v1/profile``, ``/v1/similarity``: the first API, as thin aliases.

Each alias maps its request shape (qa ``top_k``, profile ``posts``, similarity ``pairs``) onto
the version's runtime unit and the unit's answers back onto its response shape, answer for
answer and error for error. The alias request models are generated from the version's own
instance model, so the field rules (types, limits) are the spec's. If the qa version's spec
declares a ``segment_weights`` head, qa answers add ``evidence: [{"segment", "sentence",
"weight"}]`` (``segment`` as in the head's answer on ``:predict``; ``sentence``, the same text,
is the first API's name, kept for its clients);
if the profile version's spec declares an ``age_band`` head, profile answers add
``age_band: {"label", "probability", "probabilities"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from flask import Response
from pydantic import Field, create_model

from serving.gateway import inference
from serving.gateway.backends import VersionSelector
from serving.gateway.errors import GatewayError
from serving.gateway.exchange import Exchange
from serving.gateway.inference import Call, Prepared, Services
from serving.gateway.request_body import read_json
from serving.gateway.request_models import StrictBody, list_type, top_k_type
from serving.gateway.runtime import ModelRuntime
from serving.gateway.web import (
    PIN_KEYS,
    blueprint,
    exchange,
    parse,
    query_selector,
    respond,
    services,
    takes_query,
)
from serving.windows import Encodings

Answers = dict[str, Any]
ALIASES = ("qa", "profile", "similarity")


@dataclass(frozen=True)
class AliasModels:
    """An alias's request models for one version (``batch`` None: no ``instances`` form);
    ``unshown``: the categorical heads whose ``probabilities`` map its answer does not show
    (:func:`qa_answer` shows a label, its probability and the candidates)."""

    single: type[StrictBody]
    batch: type[StrictBody] | None
    unshown: frozenset[str] = frozenset()


@lru_cache(maxsize=64)
def alias_models(runtime: ModelRuntime) -> AliasModels:
    """The alias request models of a version (qa adds top_k; similarity wraps pairs)."""
    settings = runtime.settings
    base = runtime.models.instance
    if runtime.model == "similarity":
        pair = create_model("SentencePair", __base__=base, __doc__="Two sentences to compare.")
        pairs_limit = ("max_pairs_per_request", settings.max_pairs_per_request)
        body = create_model(
            "SimilarityRequest",
            __base__=StrictBody,
            __doc__="Sentence pairs to score.",
            pairs=(list_type(pair, pairs_limit), ...),
        )
        return AliasModels(body, None)
    if runtime.model == "qa":
        top_k = (top_k_type(settings), Field(default=1, description="Candidate answers returned."))
        single = create_model(
            "QARequest", __base__=base, __doc__="A story and a question.", top_k=top_k
        )
    else:
        single = create_model("ProfileRequest", __base__=base, __doc__="A person's posts.")
    batch_limit = ("max_instances_per_batch", settings.max_instances_per_batch)
    batch = create_model(
        "QABatchRequest" if runtime.model == "qa" else "ProfileBatchRequest",
        __base__=StrictBody,
        __doc__="Several requests answered with one model call.",
        instances=(list_type(single, batch_limit), ...),
    )
    if runtime.model not in MAPLESS_SHAPES:
        return AliasModels(single, batch)
    categorical = (head.field for head in runtime.spec.heads if head.kind == "categorical")
    return AliasModels(single, batch, frozenset(categorical))


def is_batch(model: str, payload: Any) -> bool:
    """Whether an alias body is the ``{"instances": [...]}`` form (qa and profile only)."""
    return model != "similarity" and isinstance(payload, dict) and "instances" in payload


def prepare_alias(runtime: ModelRuntime, payload: Any) -> Prepared:
    """Validate an alias body against the version's models; its instances and top_ks.

    Raises GatewayError 502 when the version's heads cannot give the alias's answers
    (``ModelRuntime.alias_problem``), before the body is validated or the model runs."""
    if (problem := runtime.alias_problem) is not None:
        raise GatewayError(502, _unanswerable(runtime, problem))
    models = alias_models(runtime)
    known = Encodings()
    if runtime.model == "similarity":
        items = list(getattr(parse(models.single, payload, known), "pairs"))  # noqa: B009
    elif is_batch(runtime.model, payload) and models.batch is not None:
        items = list(getattr(parse(models.batch, payload, known), "instances"))  # noqa: B009
    else:
        items = [parse(models.single, payload, known)]
    named = runtime.models.renamed  # spec fields pydantic holds under another attribute
    instances = [
        {named.get(key, key): value for key, value in item if key != "top_k"} for item in items
    ]
    top_ks = [getattr(item, "top_k", None) for item in items]
    return Prepared(instances, top_ks, known, models.unshown)


def _unanswerable(runtime: ModelRuntime, problem: str) -> str:
    return (
        f"model {runtime.model!r} version {runtime.version} does not give this endpoint's "
        f"answers ({problem}): use POST /v1/models/{runtime.model}:predict"
    )


def qa_answer(runtime: ModelRuntime, answers: Answers) -> Answers:
    """``{"answer", "confidence", "candidates"[, "evidence"]}`` from the unit's answers."""
    heads = {head.kind: head.field for head in reversed(runtime.spec.heads)}
    best = answers[heads["categorical"]]
    shaped: Answers = {
        "answer": best["label"],
        "confidence": best["probability"],
        "candidates": [
            {"answer": item["label"], "probability": item["probability"]}
            for item in best["candidates"]
        ],
    }
    if "segment_weights" in heads:
        shaped["evidence"] = [
            {"segment": item["segment"], "sentence": item["segment"], "weight": item["weight"]}
            for item in answers[heads["segment_weights"]]
        ]
    return shaped


def profile_answer(runtime: ModelRuntime, answers: Answers) -> Answers:
    """``{"age", "income_group", "gender"[, "age_band"]}``; the income group is a proxy when
    noted; ``age_band`` only from versions whose spec declares that head."""
    income = answers["income_group"]
    labels = list(income["probabilities"])
    gender = answers["gender"]
    shaped: Answers = {
        "age": answers["age"]["value"],
        "income_group": {
            "group": labels.index(income["label"]),
            "label": income["label"],
            "probabilities": list(income["probabilities"].values()),
            "is_proxy": bool(income.get("note")),
            "note": income.get("note", ""),
        },
        "gender": {"label": gender["label"], "probability": gender["probability"]},
    }
    band = answers.get("age_band")
    if band is not None:
        shaped["age_band"] = {
            "label": band["label"],
            "probability": band["probability"],
            "probabilities": band["probabilities"],
        }
    return shaped


Shape = Callable[[ModelRuntime, Answers], Answers]
SHAPES: dict[str, Shape] = {"qa": qa_answer, "profile": profile_answer}
# The shapes that show no categorical head's probabilities map (qa_answer: a label, its
# probability, the candidates): their versions' heads skip building it (AliasModels.unshown).
MAPLESS_SHAPES = frozenset({"qa"})


def alias_answer(
    found: Services, exchange: Exchange, model: str, payload: Any, selector: VersionSelector
) -> dict[str, Any]:
    """The alias answer of ``model`` to a parsed body, on the version ``selector`` picks.

    Notes the model and version on ``exchange`` (metrics labels, access line). Raises
    GatewayError as :func:`serving.gateway.inference.predict`, and 502 when the version's
    heads do not give this endpoint's answers.
    """
    exchange.model = model
    call = Call(selector, exchange.request_id)
    predicted = inference.predict(
        found, model, call, lambda runtime: prepare_alias(runtime, payload)
    )
    runtime = predicted.runtime
    reference = {"name": model, "version": runtime.version}
    try:
        if model == "similarity":
            scores = [answer["score"]["value"] for answer in predicted.answers]
            body: dict[str, Any] = {"scores": scores, "model": reference}
        else:
            shaped = [SHAPES[model](runtime, answer) for answer in predicted.answers]
            if is_batch(model, payload):
                body = {"predictions": shaped, "model": reference}
            else:
                body = {**shaped[0], "model": reference}
    except (KeyError, TypeError, ValueError) as error:  # a head of another kind under the name
        raise GatewayError(502, f"model {model!r} does not give this endpoint's answers") from error
    exchange.version = str(runtime.version)
    return body


def _alias(model: str) -> Response:
    state = exchange()
    state.model = model  # before the body's and the query's checks: their refusals count too
    payload = read_json()
    return respond(alias_answer(services(), state, model, payload, query_selector()))


@blueprint.post("/v1/qa")
@takes_query(*PIN_KEYS, model="qa")
def qa() -> Response:
    """Answer one QA request or a batch of them."""
    return _alias("qa")


@blueprint.post("/v1/profile")
@takes_query(*PIN_KEYS, model="profile")
def profile() -> Response:
    """Profile one person or a batch of people."""
    return _alias("profile")


@blueprint.post("/v1/similarity")
@takes_query(*PIN_KEYS, model="similarity")
def similarity() -> Response:
    """Score sentence pairs."""
    return _alias("similarity")
