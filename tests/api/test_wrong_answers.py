"""A model server that answers a checked version wrongly over gRPC: a 502, never values.

Found by the adversarial repo pass 5: a relay answering the fit check right and later requests
with a DT_INT32 output of ones was answered as probabilities of 1.0 (the REST backend reads
JSON numbers as float32, so only gRPC can tell), and an answer for another version than the
pinned one was labelled with the pinned version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from serving.protos import tfs_wire_pb2 as wire
from tests.api.conftest import gateway_app
from tests.support.grpc_servers import Forward
from tests.support.grpc_servers import relay as relayed_to
from tests.support.model_server import ModelServerHandle

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
Alter = Callable[[wire.PredictResponse], None]


def _integer_ones(response: wire.PredictResponse) -> None:
    for key in response.outputs:
        tensor = response.outputs[key]
        cells = 1
        for dim in tensor.tensor_shape.dim:
            cells *= dim.size
        tensor.dtype = wire.DT_INT32
        tensor.ClearField("tensor_content")
        tensor.ClearField("float_val")
        tensor.int_val.extend([1] * cells)


def _another_version(response: wire.PredictResponse) -> None:
    response.model_spec.version.value += 1


def _another_model(response: wire.PredictResponse) -> None:
    # Found by the adversarial repo pass 7, as the signature below: a 200 with these values.
    response.model_spec.name = "profile"


def _another_signature(response: wire.PredictResponse) -> None:
    response.model_spec.signature_name = "serving_other"


ALTERATIONS: dict[str, Alter] = {
    "integer ones": _integer_ones,
    "another version": _another_version,
    "another model": _another_model,
    "another signature": _another_signature,
}


@pytest.fixture
def relay(model_server: ModelServerHandle) -> Iterator[tuple[str, dict[str, Alter]]]:
    """A real gRPC server relaying to the session's model server; a request that is not the
    fit check's has its answer changed by ``altering["now"]``, when set."""
    altering: dict[str, Alter] = {}

    def hook(method: str, request: bytes, context: grpc.ServicerContext, forward: Forward) -> bytes:
        answer = forward(request)
        request_id = str(dict(context.invocation_metadata()).get("x-request-id", ""))
        if method != "Predict" or request_id.startswith("fit-check") or not altering:
            return answer
        response = wire.PredictResponse.FromString(answer)
        altering["now"](response)
        return response.SerializeToString()

    with relayed_to(model_server.grpc_target, hook) as target:
        yield target, altering


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_a_wrong_answer_over_grpc_is_a_bad_gateway(
    tiny_repo: Path, relay: tuple[str, dict[str, Alter]], alteration: str
) -> None:
    target, altering = relay
    with gateway_app(tiny_repo, target, models=["qa"], retries=0) as app:
        client = app.test_client()
        assert client.post("/v1/qa", json=QA).status_code == 200  # checked and routed
        altering["now"] = ALTERATIONS[alteration]
        for path in ("/v1/qa", "/v1/qa?version=1"):
            response = client.post(path, json=QA)
            assert response.status_code == 502, response.get_json()
            assert response.get_json() == {"error": "the model server failed", "detail": []}


def _scaled(factor: float) -> Alter:
    def scale(response: wire.PredictResponse) -> None:
        for key in response.outputs:
            tensor = response.outputs[key]
            if tensor.tensor_content:
                values = np.frombuffer(tensor.tensor_content, dtype=np.float32) * factor
                tensor.tensor_content = values.astype(np.float32).tobytes()
            else:
                scaled = [value * factor for value in tensor.float_val]
                tensor.ClearField("float_val")
                tensor.float_val.extend(scaled)

    return scale


@pytest.mark.parametrize("factor", [10.0, -1.0, 0.5])
def test_values_that_are_no_probabilities_are_a_bad_gateway(
    tiny_repo: Path, relay: tuple[str, dict[str, Alter]], factor: float
) -> None:
    """Found by the adversarial repo pass 6: a checked version answered later with values
    that are no probabilities (a model server that loaded another model under the number,
    ending in logits; a relay) was answered as probabilities of 2.0, -0.2, or rows summing
    to 0.5; the fit check alone saw them."""
    target, altering = relay
    with gateway_app(tiny_repo, target, models=["qa"], retries=0) as app:
        client = app.test_client()
        assert client.post("/v1/qa", json=QA).status_code == 200  # checked and routed
        altering["now"] = _scaled(factor)
        for path in ("/v1/qa", "/v1/models/qa:predict"):
            body = QA if path == "/v1/qa" else {"instances": [QA]}
            response = client.post(path, json=body)
            assert response.status_code == 502, response.get_json()
            assert response.get_json() == {
                "error": "the model returned an unusable answer",
                "detail": [],
            }
