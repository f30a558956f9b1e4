"""Does a loaded version fit its spec? Checked against the backend before it is routed.

The signature (GetModelMetadata) must have exactly the spec's input tensors, all DT_INT32, and
exactly its head outputs, all DT_FLOAT; the spec's example, run once through the backend
(with the backend's deadline), must give outputs every head can read (shape, label count,
finite values, probabilities where the head reads them). A failure raises
:class:`~serving.gateway.runtime.UnfitVersionError` with a short reason for clients (server
text goes to the log); a transient backend failure
(unavailable, deadline, version not loaded yet) raises the ``BackendError`` so the check is
simply repeated at the next poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from serving.gateway.backends import Backend, TensorSpec, VersionSelector
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.heads import OutputError
from serving.gateway.runtime import ModelRuntime, UnfitVersionError
from serving.spec import BinaryHead, CategoricalHead, MultilabelHead, ServingSpec
from serving.tensor_batches import moved_output, padded_further
from serving.tokenization import panics_as_errors

Result = TypeVar("Result")
LOGGER = logging.getLogger("serving.gateway.checks")
INPUT_DTYPE = "DT_INT32"
OUTPUT_DTYPE = "DT_FLOAT"
# How far a probability may stray from [0, 1], and a softmax row's sum from 1 (float32
# rounding over a few thousand labels stays far below it).
PROBABILITY_TOLERANCE = 1e-3
TRANSIENT = (
    BackendFailure.UNAVAILABLE,
    BackendFailure.DEADLINE_EXCEEDED,
    BackendFailure.NOT_FOUND,
)


def check_fit(backend: Backend, runtime: ModelRuntime) -> None:
    """Raise UnfitVersionError unless the backend's version matches the runtime's spec."""
    name = runtime.spec.signature_name
    selector = VersionSelector(version=runtime.version, signature_name=name)
    request_id = f"fit-check-{runtime.model}-{runtime.version}"
    metadata = _call(
        runtime, "metadata", lambda: backend.model_metadata(runtime.model, selector, request_id)
    )
    if metadata.signatures and name not in metadata.signatures:
        raise UnfitVersionError(
            f"the model has no signature {name!r} (the spec's signature_name); it has "
            f"{', '.join(metadata.signatures)}"
        )
    _compare("input", metadata.inputs, [item.tensor for item in runtime.spec.inputs], INPUT_DTYPE)
    _compare("output", metadata.outputs, [head.output for head in runtime.spec.heads], OUTPUT_DTYPE)
    example = [runtime.spec.example]
    try:
        with panics_as_errors():
            tensors = runtime.preprocess(example)
    except Exception as error:  # tokenizers raise bare Exceptions
        LOGGER.warning("%s v%d: example not encodable: %r", runtime.model, runtime.version, error)
        raise UnfitVersionError("the spec's example cannot be tokenised") from error
    outputs = _call(
        runtime, "example", lambda: backend.predict(runtime.model, selector, tensors, request_id)
    )
    try:
        runtime.postprocess(outputs, example)
    except (OutputError, KeyError, IndexError, TypeError, ValueError) as error:
        raise UnfitVersionError(f"the spec's example gave unusable outputs: {error}") from error
    check_probabilities(runtime.spec, outputs)
    check_padding(backend, runtime, selector, tensors, outputs)


def check_probabilities(spec: ServingSpec, outputs: dict[str, npt.NDArray[Any]]) -> None:
    """Raise UnfitVersionError unless each head that reads probabilities was given some.

    ``categorical`` reads a softmax (each row in [0, 1], summing to 1), ``binary`` and
    ``multilabel`` sigmoids (in [0, 1]), within :data:`PROBABILITY_TOLERANCE`. A model that
    ends without its activation (logits: a Dense layer trained with ``from_logits=True``)
    passes every shape check and would answer probabilities of 4.2 or -3.
    """
    for head in spec.heads:
        if not isinstance(head, CategoricalHead | BinaryHead | MultilabelHead):
            continue
        values = np.asarray(outputs[head.output], dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        if low < -PROBABILITY_TOLERANCE or high > 1 + PROBABILITY_TOLERANCE:
            raise UnfitVersionError(
                f"output {head.output} gives {low:.3g}..{high:.3g} on the spec's example, no "
                f"probabilities as its {head.kind} head reads (logits? the model must end with "
                "its activation)"
            )
        sums = values.reshape(len(values), -1).sum(axis=1)
        if isinstance(head, CategoricalHead) and np.abs(sums - 1).max() > PROBABILITY_TOLERANCE:
            raise UnfitVersionError(
                f"output {head.output}'s rows sum to {float(sums.min()):.3g}.."
                f"{float(sums.max()):.3g} on the spec's example, not 1 as the softmax its "
                "categorical head reads"
            )


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
    was batched with. The probe is :func:`serving.tensor_batches.padded_further` and
    :func:`~serving.tensor_batches.moved_output`, as at export.
    """
    padded = padded_further(runtime.spec, tensors)
    if all(padded[key].shape == tensors[key].shape for key in tensors):
        return  # the example fills every input: a batch could add nothing to it
    request_id = f"fit-check-{runtime.model}-{runtime.version}-padded"
    again = _call(
        runtime,
        "padded example",
        lambda: backend.predict(runtime.model, selector, padded, request_id),
    )
    name = moved_output(outputs, again)
    if name is not None:
        raise UnfitVersionError(
            f"output {name} changes when the inputs are padded further with pad_id "
            f"{runtime.spec.pad_id}: batching would change answers (the model must mask the "
            "padding)"
        )


def _call(runtime: ModelRuntime, what: str, call: Callable[[], Result]) -> Result:
    """``call()``; a backend failure that is not transient is the version's: unfit."""
    try:
        return call()
    except BackendError as error:
        if error.failure in TRANSIENT:
            raise
        LOGGER.warning(
            "%s v%d: %s call failed: %s", runtime.model, runtime.version, what, error.message
        )
        if what == "metadata":
            raise UnfitVersionError(f"signature metadata failed ({error.failure.value})") from error
        raise UnfitVersionError(
            f"the model failed on the spec's {what} ({error.failure.value})"
        ) from error


def _compare(kind: str, found: dict[str, TensorSpec], expected: list[str], dtype: str) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing or unexpected:
        raise UnfitVersionError(
            f"signature {kind}s differ from the spec: missing {missing}, not in the spec "
            f"{unexpected}"
        )
    wrong = sorted(
        f"{name} is {found[name].dtype}" for name in expected if found[name].dtype != dtype
    )
    if wrong:
        raise UnfitVersionError(f"signature {kind}s must be {dtype}: {', '.join(wrong)}")
