"""The Predict path shared by gRPC and REST: resolve the version, validate, run, filter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from serving import contract
from serving.modelserver.batch_tensors import check_batchable
from serving.modelserver.manager import ModelManager
from serving.modelserver.version_state import VersionState
from serving.tensor_batches import Array, Tensors


@dataclass(frozen=True)
class PredictResult:
    """Outputs of one Predict call and the version/signature that produced them."""

    name: str
    version: int
    signature_name: str
    outputs: Tensors


def predict(
    manager: ModelManager,
    name: str,
    inputs: Mapping[str, Array],
    *,
    version: int | None = None,
    label: str = "",
    signature_name: str = "",
    output_filter: Sequence[str] = (),
    deadline: float | None = None,
) -> PredictResult:
    """Run one request as TF Serving does, raising ServingError with its status code
    (``deadline``: a ``time.monotonic()`` time, :meth:`VersionState.predict`)."""
    state = manager.resolve(name, version, label)
    return predict_on(
        state, inputs, signature_name=signature_name, output_filter=output_filter, deadline=deadline
    )


def predict_on(
    state: VersionState,
    inputs: Mapping[str, Array],
    *,
    signature_name: str = "",
    output_filter: Sequence[str] = (),
    deadline: float | None = None,
) -> PredictResult:
    """Validate and run a request on an already resolved version."""
    assert state.servable is not None
    signature = signature_name or contract.SIGNATURE_NAME
    request_inputs = dict(inputs)
    selected = state.servable.check_request(signature, request_inputs, output_filter)
    if state.batcher is not None:
        check_batchable(request_inputs)
    outputs = state.predict(signature, request_inputs, deadline)
    return PredictResult(
        state.servable.name, state.version, signature, {key: outputs[key] for key in selected}
    )
