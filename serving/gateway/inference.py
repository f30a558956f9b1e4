"""The inference core: resolve the version -> validate -> preprocess -> predict -> postprocess.

Every endpoint (the generic ``:predict`` ones and the ``/v1/qa``-style aliases) goes through
:func:`predict` with its own ``prepare`` function, which validates the body against the
resolved version's generated request models and returns the instances to run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from serving.encoding import Tensors
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.coalescing import Coalescer
from serving.gateway.errors import BackendError, BackendFailure, GatewayError, backend_to_gateway
from serving.gateway.heads import Answer, OutputError
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.model_state import unrouted_error, unserved_version_error
from serving.gateway.registry import ModelRegistry
from serving.gateway.runtime import ModelRuntime, Segments
from serving.gateway.settings import GatewaySettings
from serving.tokenization import panic_error
from serving.windows import Encodings

LOGGER = logging.getLogger("serving.gateway.inference")


@dataclass(frozen=True)
class Services:
    """What a request needs, built once per app."""

    settings: GatewaySettings
    backend: Backend
    registry: ModelRegistry
    metrics: GatewayMetrics
    coalescer: Coalescer


@dataclass(frozen=True)
class Call:
    """Per-request context: which version to use and the id to forward."""

    selector: VersionSelector
    request_id: str


@dataclass(frozen=True)
class Prepared:
    """Validated instances (input field -> value) and each one's top_k (None: the spec's).

    ``known``: the text encodings validation made (each text is tokenised once per request).
    ``unshown``: categorical head fields whose ``probabilities`` map the endpoint's answer
    does not show (:meth:`serving.gateway.runtime.ModelRuntime.postprocess`).
    """

    instances: Sequence[Mapping[str, Any]]
    top_ks: Sequence[int | None]
    known: Encodings | None = None
    unshown: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Predicted:
    """One ``{head field: readable value}`` per instance, and the version that answered."""

    runtime: ModelRuntime
    prepared: Prepared
    answers: list[dict[str, Answer]]


Prepare = Callable[[ModelRuntime], Prepared]
Outputs = dict[str, npt.NDArray[Any]]


def predict(services: Services, model: str, call: Call, prepare: Prepare) -> Predicted:
    """Answer a request with one backend call on the version it was validated and tokenised for.

    Raises GatewayError: 404 (unknown model/version), 422 (validation, limits), 500 (the
    version's tokenizer panicked on the text), 502 (unusable outputs), 503/504 (backend), with
    the raw backend or tokenizer text only in the log.
    """
    # Plain try blocks, not context managers: this runs once per request (issue 9).
    try:
        return _predict(services, model, call, prepare)
    except BaseException as error:
        # pyo3's PanicException is a BaseException (past every `except Exception`): a
        # version's tokenizer that panics on some texts only (a normalizer regex matching the
        # empty string at a text's start, then NFC: tokenizers 0.23) ended the request with
        # no answer. The version's file, not the client's text, is at fault.
        if (panic := panic_error(error)) is None:
            raise
        LOGGER.error("%s: the tokenizer panicked on a request's text: %s", model, panic)
        raise GatewayError(500, "the model's tokenizer failed on this request's text") from None


def _predict(services: Services, model: str, call: Call, prepare: Prepare) -> Predicted:
    try:
        runtime, prepared, segments, outputs = _resolve_and_predict(services, model, call, prepare)
    except BackendError as error:
        LOGGER.warning("backend call failed: %s", error)
        raise backend_to_gateway(error, services.settings.retry_after_seconds) from error
    start = time.perf_counter()  # each stage timed with try/finally: no timer object per stage
    try:
        answers = runtime.postprocess(
            outputs,
            prepared.instances,
            prepared.top_ks,
            segments=segments,
            unshown=prepared.unshown,
        )
    except (OutputError, KeyError, IndexError, TypeError, ValueError) as error:
        # The JSON log line carries the request id of the request being answered.
        LOGGER.error("%s v%d: unusable model output: %r", runtime.model, runtime.version, error)
        raise GatewayError(502, "the model returned an unusable answer") from error
    finally:
        services.metrics.observe_stage("postprocess", model, time.perf_counter() - start)
    return Predicted(runtime, prepared, answers)


def _resolve_and_predict(
    services: Services, model: str, call: Call, prepare: Prepare
) -> tuple[ModelRuntime, Prepared, Segments, Outputs]:
    runtime = services.registry.resolve(model, call.selector, call.request_id)
    prepared = prepare(runtime)
    try:
        segments, outputs = _encode_and_predict(services, runtime, prepared, call)
    except BackendError as error:
        pinned = call.selector.version is not None or call.selector.label is not None
        if pinned and error.failure is BackendFailure.NOT_FOUND:
            # The server's own state (a failed or unfinished load) is no client's 404.
            retry_after = services.settings.retry_after_seconds
            unserved = unserved_version_error(services.backend, model, runtime.version, retry_after)
            if unserved is not None:
                raise unserved from error
        if error.failure is not BackendFailure.NOT_FOUND or pinned:
            raise
        # The routed version was retired between two polls: re-route once, re-validate.
        state = services.registry.refresh_model(model)
        fresh = state.routed
        if fresh is None:
            # Nothing left to route to (its successor does not fit, or none is loaded): the
            # model's state, not the client's doing, so the 503 that says why, not a 404.
            raise unrouted_error(model, state, services.settings.retry_after_seconds) from error
        if fresh.version == runtime.version:
            raise
        LOGGER.info("%s version %d retired; retrying on %d", model, runtime.version, fresh.version)
        runtime, prepared = fresh, prepare(fresh)
        segments, outputs = _encode_and_predict(services, runtime, prepared, call)
    return runtime, prepared, segments, outputs


def _encode_and_predict(
    services: Services, runtime: ModelRuntime, prepared: Prepared, call: Call
) -> tuple[Segments, Outputs]:
    metrics, model = services.metrics, runtime.model
    start = time.perf_counter()
    try:
        tensors, segments = _encode(runtime, prepared)
    finally:
        metrics.observe_stage("tokenise", model, time.perf_counter() - start)
    start = time.perf_counter()
    try:
        # The exact version whose tokenizer produced these ids; maybe in one call with others.
        spec = runtime.spec
        outputs = services.coalescer.predict(
            model,
            runtime.version,
            spec.pad_id,
            tensors,
            call.request_id,
            spec.signature_name,
        )
    finally:
        metrics.observe_stage("backend", model, time.perf_counter() - start)
    return segments, outputs


def _encode(runtime: ModelRuntime, prepared: Prepared) -> tuple[Tensors, Segments]:
    """The id tensors and the segment heads' slot texts, without the encodings they came
    from: a cut encoding still holds its whole text's tokens (``overflowing``), and a request
    waiting for the model server held them (16 profiles of 1 MB took a worker past 700 MB).
    """
    encoded = runtime.encode(prepared.instances, prepared.known)
    return encoded.tensors, runtime.segments(prepared.instances, encoded.encodings)
