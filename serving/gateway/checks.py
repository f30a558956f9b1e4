"""Does a loaded version fit its spec? Checked against the backend before it is routed.

The signature (GetModelMetadata) must have exactly the spec's input tensors, all DT_INT32, and
exactly its head outputs, all floating point (:data:`OUTPUT_DTYPES`); the spec's example, run
once through the backend in a batch of two, must give outputs every head can read
(a row per instance, shape, label count, finite values, probabilities where a head reads
them: ``serving.spec_outputs``); a row of each input's ``max_tokens`` ids must answer too,
and padding further must not move the outputs. A failure raises
:class:`~serving.gateway.runtime.UnfitVersionError` with a short reason for clients (server
text goes to the log); a transient backend failure (unavailable, the metadata call's
deadline, version not loaded yet) raises the ``BackendError`` so the check is simply
repeated at the next poll.

Each prediction of the check has ``GATEWAY_CHECK_TIMEOUT_SECONDS`` (not the request
deadline: a version's load is not a client's request, and TF Serving's warmup has no
deadline). One that misses it raises :class:`SlowVersionError`: the metadata answered, so the
server is up and this version is too slow (or hangs); it is refused, and checked again after
a backoff (:mod:`serving.gateway.verdicts`), not at every poll. Found by the adversarial
repo pass 5: a model slower than the request deadline on a full row was retried at every
poll forever, logged at INFO only, and never routed.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import quote

import numpy as np
import numpy.typing as npt

from serving.gateway.backends import Backend, TensorSpec, VersionSelector
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.heads import OutputError, ProbabilityError
from serving.gateway.runtime import ModelRuntime, UnfitVersionError
from serving.spec_outputs import output_problem
from serving.tensor_batches import (
    left_padding_hint,
    longest_rows,
    moved_output,
    pad_description,
    pad_values,
    padded_further,
    random_output_reason,
)
from serving.tokenization import panics_as_errors

LOGGER = logging.getLogger("serving.gateway.checks")
INPUT_DTYPE = "DT_INT32"
# A head's output is read as its values whatever its float width, as the export reads a
# model's: a mixed-precision model computes float16 or bfloat16 heads, and TF Serving reports a
# SavedModel written without this project's export (which casts to float32) as DT_HALF.
OUTPUT_DTYPES = ("DT_FLOAT", "DT_HALF", "DT_BFLOAT16", "DT_DOUBLE")
FIT_ROWS = 2  # instances of the example in the fit check's batch
TRANSIENT = (
    BackendFailure.UNAVAILABLE,
    BackendFailure.DEADLINE_EXCEEDED,
    BackendFailure.NOT_FOUND,
)


class SlowVersionError(UnfitVersionError):
    """A prediction of the check missed ``GATEWAY_CHECK_TIMEOUT_SECONDS``: unfit until it is
    checked again after a backoff (the server may have been busy with other work)."""


def check_request_id(runtime: ModelRuntime, what: str = "") -> str:
    """The request id of a check's call: ``fit-check-<model>-<version>[-<what>]``, the model
    name percent-encoded. Found by the adversarial repo pass 7: a model named ``é`` in
    models.config (any name past printable ASCII) made every check's gRPC call fail in the
    client ("Invalid metadata": metadata values are printable ASCII), so the version was
    never routed, as "signature metadata failed (internal)"; a comma in a name would read as
    a merged call's several ids."""
    model = quote(runtime.model, safe="")
    return f"fit-check-{model}-{runtime.version}" + (f"-{what}" if what else "")


def check_fit(backend: Backend, runtime: ModelRuntime) -> None:
    """Raise UnfitVersionError unless the backend's version matches the runtime's spec."""
    name = runtime.spec.signature_name
    selector = VersionSelector(version=runtime.version, signature_name=name)
    request_id = check_request_id(runtime)
    try:
        metadata = backend.model_metadata(runtime.model, selector, request_id)
    except BackendError as error:
        if error.failure in TRANSIENT:
            raise
        LOGGER.warning("%s v%d: metadata failed: %s", runtime.model, runtime.version, error.message)
        raise UnfitVersionError(f"signature metadata failed ({error.failure.value})") from error
    if metadata.signatures and name not in metadata.signatures:
        raise UnfitVersionError(
            f"the model has no signature {name!r} (the spec's signature_name); it has "
            f"{', '.join(metadata.signatures)}"
        )
    _compare(
        "input", metadata.inputs, [item.tensor for item in runtime.spec.inputs], (INPUT_DTYPE,)
    )
    _compare(
        "output", metadata.outputs, [head.output for head in runtime.spec.heads], OUTPUT_DTYPES
    )
    # Twice: an output computed over the whole batch (one row whatever the batch, a mean over
    # axis 0) fits a batch of one, and fails every request of several instances (502).
    example = [runtime.spec.example] * FIT_ROWS
    try:
        with panics_as_errors():
            tensors = runtime.preprocess(example)
    except Exception as error:  # tokenizers raise bare Exceptions
        LOGGER.warning("%s v%d: example not encodable: %r", runtime.model, runtime.version, error)
        raise UnfitVersionError("the spec's example cannot be tokenised") from error
    outputs = _predict(backend, runtime, selector, tensors, "example")
    try:
        runtime.postprocess(outputs, example)
    except ProbabilityError as error:  # with the remedy: most likely a model ending in logits
        raise UnfitVersionError(
            output_problem(error.head, outputs[error.head.output]) or str(error)
        ) from error
    except (OutputError, KeyError, IndexError, TypeError, ValueError) as error:
        raise UnfitVersionError(f"the spec's example gave unusable outputs: {error}") from error
    slowest = check_longest(backend, runtime, selector, tensors)
    check_padding(backend, runtime, selector, tensors, outputs)
    if slowest is not None:  # it fits: say now what a long text will meet
        _warn_if_slow(runtime, *slowest)


def check_longest(
    backend: Backend,
    runtime: ModelRuntime,
    selector: VersionSelector,
    tensors: dict[str, npt.NDArray[Any]],
) -> tuple[str, float] | None:
    """Raise UnfitVersionError unless the model answers finite outputs for a row of each
    input's ``max_tokens`` ids (:func:`serving.tensor_batches.longest_rows`, export's probe).

    A version exported without this project's export (a hand-made SavedModel and spec) may
    take fewer positions than its spec's ``max_tokens``: the short example passes, and every
    long text would be a 502. A row the model answers only within
    ``GATEWAY_CHECK_TIMEOUT_SECONDS`` (:class:`SlowVersionError` past it) but later than
    ``GATEWAY_REQUEST_TIMEOUT_SECONDS`` is routed with a WARNING: short texts answer in time.
    Returns the slowest row (its description, seconds), None when no row was sent.
    """
    slowest: tuple[str, float] | None = None
    for field, probe in longest_rows(runtime.spec, tensors):
        tokens = _max_tokens(runtime, field)
        longest = f"a row of max_tokens {tokens} ids of input {field!r}"
        unfit = (
            f"input {field!r}: the model fails on a row of max_tokens {tokens} ids "
            "({failure}): does it take fewer positions than the spec's max_tokens?"
        )
        started = time.monotonic()
        outputs = _predict(backend, runtime, selector, probe, f"longest-{field}", longest, unfit)
        seconds = time.monotonic() - started
        if slowest is None or seconds > slowest[1]:
            slowest = (longest, seconds)
        for head in runtime.spec.heads:
            value = outputs.get(head.output)
            if value is None or not np.isfinite(value).all():
                raise UnfitVersionError(
                    f"head {head.field!r}: output {head.output!r} is missing or not finite for "
                    f"{longest}"
                )
    return slowest


def _max_tokens(runtime: ModelRuntime, field: str) -> int:
    return next(item.max_tokens for item in runtime.spec.inputs if item.field == field)


def check_padding(
    backend: Backend,
    runtime: ModelRuntime,
    selector: VersionSelector,
    tensors: dict[str, npt.NDArray[Any]],
    outputs: dict[str, npt.NDArray[Any]],
) -> None:
    """Raise UnfitVersionError unless padding the example's inputs further leaves its outputs.

    Batching pads every request of a batch to the longest (TF Serving's
    ``pad_variable_length_inputs``, the local model server, the gateway's coalescing): that is
    safe only for a model that masks or ignores ``pad_id``, as the serving spec's contract
    asks (``serving.spec``); another would answer a request differently depending on what it
    was batched with. The probe is :func:`serving.tensor_batches.padded_further` with each of
    :func:`~serving.tensor_batches.pad_values` (the spec's ``pad_id`` and the 0 the local model
    server pads with) and :func:`~serving.tensor_batches.moved_output`, as at export; an output
    that moves on the unpadded ids sent again is the model's randomness, not its padding
    (:func:`~serving.tensor_batches.random_output_reason`).
    """
    spec = runtime.spec
    for value in pad_values(spec):
        padded = padded_further(spec, tensors, value)
        if all(padded[key].shape == tensors[key].shape for key in tensors):
            return  # the example fills every input: a batch could add nothing to it
        padded_outputs = _predict(
            backend, runtime, selector, padded, f"padded-{value}", "padded example"
        )
        name = moved_output(outputs, padded_outputs)
        if name is not None:
            repeated = _predict(
                backend, runtime, selector, tensors, f"again-{value}", "padded example"
            )
            if moved_output(outputs, repeated) is not None:
                raise UnfitVersionError(random_output_reason(name))
            raise UnfitVersionError(
                f"output {name} changes when the inputs are padded further with "
                f"{pad_description(spec, value)}: batching would change answers (the model "
                f"must mask the padding){left_padding_hint(spec)}"
            )


def _predict(
    backend: Backend,
    runtime: ModelRuntime,
    selector: VersionSelector,
    tensors: dict[str, npt.NDArray[Any]],
    what: str,
    described: str = "",
    unfit: str = "",
) -> dict[str, npt.NDArray[Any]]:
    """One prediction of the check, with ``GATEWAY_CHECK_TIMEOUT_SECONDS``; raises
    SlowVersionError past it, UnfitVersionError (``unfit`` with the ``{failure}``) for
    another failure of the version's, the BackendError of a transient one."""
    described = described or f"the spec's {what}"
    unfit = unfit or f"the model failed on {described} ({{failure}})"
    request_id = check_request_id(runtime, what)
    # Never shorter than a request's: a version refused as too slow would answer requests.
    seconds = max(runtime.settings.check_timeout_seconds, runtime.settings.request_timeout_seconds)
    try:
        return backend.predict(
            runtime.model, selector, tensors, request_id, timeout_seconds=seconds
        )
    except BackendError as error:
        if error.failure is BackendFailure.DEADLINE_EXCEEDED:
            LOGGER.warning(
                "%s v%d is not routed: no answer to %s within GATEWAY_CHECK_TIMEOUT_SECONDS "
                "%g: the model is too slow for its spec on this model server (or hangs); lower "
                "the spec's max_tokens, give the model server more CPU, or raise "
                "GATEWAY_CHECK_TIMEOUT_SECONDS; it is checked again after a backoff",
                runtime.model,
                runtime.version,
                described,
                seconds,
            )
            raise SlowVersionError(
                f"no answer to {described} within GATEWAY_CHECK_TIMEOUT_SECONDS {seconds:g}: "
                "the model is too slow on this server (checked again after a backoff)"
            ) from error
        if error.failure in TRANSIENT:
            raise
        LOGGER.warning(
            "%s v%d: %s failed: %s", runtime.model, runtime.version, described, error.message
        )
        raise UnfitVersionError(unfit.replace("{failure}", error.failure.value)) from error


def _warn_if_slow(runtime: ModelRuntime, described: str, seconds: float) -> None:
    """Log a WARNING when the longest row took more than the request deadline: the version is
    routed (short texts answer), and a request of long texts will likely be a 504."""
    deadline = runtime.settings.request_timeout_seconds
    if seconds > deadline:
        LOGGER.warning(
            "%s v%d is routed, but it took %.1f s to answer %s, over "
            "GATEWAY_REQUEST_TIMEOUT_SECONDS %g: requests of long texts will likely be 504s; "
            "raise GATEWAY_REQUEST_TIMEOUT_SECONDS, lower the spec's max_tokens, or give the "
            "model server more CPU",
            runtime.model,
            runtime.version,
            seconds,
            described,
            deadline,
        )


def _compare(
    kind: str, found: dict[str, TensorSpec], expected: list[str], dtypes: tuple[str, ...]
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise UnfitVersionError(
            f"signature {kind}s differ from the spec: missing {missing}, not in the spec "
            f"{unexpected}"
        )
    wrong = sorted(
        f"{name} is {found[name].dtype}" for name in expected if found[name].dtype not in dtypes
    )
    if wrong:
        allowed = " or ".join(dtypes)
        raise UnfitVersionError(f"signature {kind}s must be {allowed}: {', '.join(wrong)}")
