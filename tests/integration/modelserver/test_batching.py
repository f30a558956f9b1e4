"""Server-side batching: merged and padded requests answer exactly like single ones."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import keras
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving.modelserver.packing import CallCosts, run_split
from serving.modelserver.servable import CALLS_TO_DECIDE, LoadedVersion
from serving.tensor_batches import merge_inputs, split_outputs
from tests.integration.modelserver.helpers import predict_request
from tests.support.model_server import running_model_server, stop_process

CLIENTS = 16
BATCHING = """max_batch_size { value: 64 }
batch_timeout_micros { value: 500000 }
max_enqueued_batches { value: 16 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: true
"""


def export_masked_model(path: Path) -> None:
    """A model that ignores pad id 0, as the project's models do."""
    keras.utils.set_random_seed(3)
    ids = keras.Input((None,), dtype="int32", name="ids")
    pooled = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Embedding(50, 4, mask_zero=True)(ids)
    )
    model = keras.Model(ids, keras.layers.Dense(3, name="scores")(pooled))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serving_default",
        lambda tensor: {"scores": model(tensor, training=False)},
        input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")],
    )
    archive.write_out(str(path), verbose=False)


@pytest.fixture(scope="module")
def batching_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("batching_repo")
    export_masked_model(repo / "masked" / "1")
    (repo / "models.config").write_text(
        'model_config_list { config { name: "masked" base_path: "masked" } }\n'
    )
    (repo / "batching_parameters.txt").write_text(BATCHING)
    return repo


def random_requests(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [
        rng.integers(
            1, 50, size=(int(rng.integers(1, 3)), int(rng.integers(1, 12))), dtype=np.int32
        )
        for _ in range(count)
    ]


def batch_count(rest_url: str) -> float:
    text = requests.get(f"{rest_url}/metrics", timeout=10).text
    match = re.search(
        r'^modelserver_batch_size_count\{model="masked",version="1"\} (\S+)', text, re.M
    )
    return float(match.group(1)) if match else 0.0


def test_batched_answers_equal_unbatched(batching_repo, local_only):
    model = tf.saved_model.load(str(batching_repo / "masked" / "1"))
    inputs = random_requests(CLIENTS)
    expected = [
        model.signatures["serving_default"](ids=tf.constant(ids))["scores"].numpy()
        for ids in inputs
    ]
    with running_model_server(batching_repo, batching=True) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        barrier = threading.Barrier(CLIENTS)

        def send(ids):
            barrier.wait(timeout=60)
            reply = stub.Predict(predict_request("masked", {"ids": ids}), timeout=60)
            return tf.make_ndarray(reply.outputs["scores"])

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, inputs))
        for answer, reference in zip(answers, expected, strict=True):
            np.testing.assert_allclose(answer, reference, atol=1e-5)
        assert 0 < batch_count(server.rest_url) < CLIENTS  # requests shared TF calls
        # 0 rows: the length splitter took numpy's max of no rows (INTERNAL)
        empty = predict_request("masked", {"ids": np.zeros((0, 3), np.int32)})
        reply = stub.Predict(empty, timeout=60)
        assert tf.make_ndarray(reply.outputs["scores"]).shape == (0, 3)
        channel.close()


def test_sigterm_answers_what_waits_in_the_queue(batching_repo, local_only, tmp_path):
    """SIGTERM while requests wait in the batching queue: they still get answers.

    The batch timeout is an hour so the requests cannot leave the queue on their own before
    SIGTERM, however slow the machine (with 0.5 s a loaded machine flushed them first and the
    queue never held all four)."""
    holding = tmp_path / "batching_parameters.txt"
    holding.write_text(BATCHING.replace("500000", "3600000000"))
    inputs = random_requests(4)
    with running_model_server(
        batching_repo, batching=True, batching_parameters_file=holding
    ) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with ThreadPoolExecutor(4) as pool:
            in_flight = [
                pool.submit(stub.Predict, predict_request("masked", {"ids": ids}), timeout=60)
                for ids in inputs
            ]
            assert server.process is not None
            # All four must be queued before SIGTERM: one still on the wire would be refused.
            wait_for_queue(server.rest_url, rows=sum(len(ids) for ids in inputs))
            assert stop_process(server.process) == 0
            assert all(future.result().outputs["scores"].float_val for future in in_flight)
        channel.close()


def wait_for_queue(rest_url: str, rows: int) -> None:
    """Bounded wait until the queue holds ``rows`` rows (the requests are all in it)."""
    pattern = re.compile(r'^modelserver_queue_depth\{model="masked",version="1"\} (\S+)', re.M)
    for _ in range(500):
        match = pattern.search(requests.get(f"{rest_url}/metrics", timeout=10).text)
        if match and float(match.group(1)) >= rows:
            return
        threading.Event().wait(0.01)
    raise AssertionError("requests never reached the queue")


def test_a_batch_split_by_length_answers_like_single_requests(batching_repo):
    """The real SavedModel run as calls of rows of similar length (packing.run_split, every
    split taken: call cost 0) gives each request the outputs it gets alone."""
    servable = LoadedVersion("masked", 1, batching_repo / "masked" / "1")
    assert servable.splittable("serving_default")
    inputs = random_requests(CLIENTS)
    widths: list[int] = []

    def runner(signature, tensors):
        widths.append(tensors["ids"].shape[1])
        return servable.run(signature, tensors)

    merged = merge_inputs([{"ids": ids} for ids in inputs], pad=True)
    outputs, _ = run_split(runner, "serving_default", merged, CallCosts(call_cost=0.0))
    assert len(widths) > 1 and min(widths) < merged["ids"].shape[1]
    for ids, part in zip(inputs, split_outputs(outputs, [len(ids) for ids in inputs]), strict=True):
        alone = servable.run("serving_default", {"ids": ids})["scores"]
        np.testing.assert_allclose(part["scores"], alone, atol=1e-5)


@pytest.mark.parametrize("below", [float("inf"), 0.0])
def test_short_calls_move_to_the_calling_thread_with_the_same_answers(batching_repo, below):
    """After CALLS_TO_DECIDE calls a signature whose calls take under the threshold runs
    its ops in the calling thread (inf: always; 0: never); answers do not change."""
    servable = LoadedVersion("masked", 1, batching_repo / "masked" / "1", caller_thread_below=below)
    inputs = random_requests(CALLS_TO_DECIDE + 4)
    assert servable.in_caller_thread("serving_default") is None  # not decided before calls
    before = [servable.run("", {"ids": ids})["scores"] for ids in inputs[:CALLS_TO_DECIDE]]
    assert servable.in_caller_thread("serving_default") is (below > 0)
    for ids, earlier in zip(inputs, before, strict=False):
        np.testing.assert_array_equal(servable.run("", {"ids": ids})["scores"], earlier)
