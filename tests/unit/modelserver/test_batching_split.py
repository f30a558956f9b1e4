"""Requests larger than ``max_batch_size`` (run in batches of it, as TF Serving's large-batch
splitting), the queue's own limit, and outputs that have no row per input row (with a
plain-Python runner, no TF)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from serving.modelserver.batching import Batcher
from serving.modelserver.config import BatchingSettings
from serving.modelserver.errors import ServingError


def per_token_runner(calls: list[int]):
    """A runner with a per-row and a per-token output that records each call's rows."""

    def run(signature, inputs):
        ids = inputs["ids"]
        calls.append(len(ids))
        return {"sum": ids.sum(axis=1), "tokens": np.stack([ids, ids * 2], axis=-1)}

    return run


@pytest.mark.parametrize("rows", [32, 33, 70, 96])
def test_a_request_larger_than_max_batch_size_runs_in_batches_of_it(rows):
    """A request of more rows than ``max_batch_size`` ran as one TF call (a few-byte gRPC fill
    of 4,096 x 256 ids took 18 GB): it runs as TF Serving's large-batch splitting runs it."""
    calls: list[int] = []
    sizes: list[int] = []
    settings = BatchingSettings(max_batch_size=32, pad_variable_length_inputs=True)
    batcher = Batcher(per_token_runner(calls), settings, observe_batch=sizes.append)
    try:
        ids = np.arange(rows * 5, dtype=np.int32).reshape(rows, 5)
        outputs = batcher.submit("serving_default", {"ids": ids})
    finally:
        batcher.close()
    expected = per_token_runner([])("serving_default", {"ids": ids})
    np.testing.assert_array_equal(outputs["sum"], expected["sum"])
    np.testing.assert_array_equal(outputs["tokens"], expected["tokens"])
    assert max(calls) <= 32 and sum(calls) == rows
    assert sizes == calls


def test_a_split_request_stops_at_its_deadline_between_batches():
    """The batches of a split request ran on after the client's gRPC deadline (4,096 rows of
    256 ids: 300 s of CPU for a call that gave up): they stop between two batches."""
    calls: list[int] = []
    settings = BatchingSettings(max_batch_size=32, pad_variable_length_inputs=True)
    batcher = Batcher(per_token_runner(calls), settings)
    try:
        ids = np.ones((100, 4), np.int32)
        with pytest.raises(ServingError) as raised:
            batcher.submit("serving_default", {"ids": ids}, deadline=time.monotonic() - 1)
        # A request within max_batch_size is one batch: nothing to stop between.
        small = batcher.submit("serving_default", {"ids": ids[:32]}, deadline=time.monotonic() - 1)
    finally:
        batcher.close()
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "after 32 of the request's 100 rows" in raised.value.message
    assert calls == [32, 32] and len(small["sum"]) == 32


def unbatched_runner(signature, inputs):
    """A signature with a per-row output beside a scalar and a fixed [5] output (a table)."""
    ids = inputs["ids"]
    return {"sum": ids.sum(axis=1), "scalar": np.float32(3.0), "table": np.arange(5.0)}


@pytest.mark.parametrize("outputs", [("scalar",), ("table",), ("scalar", "table")])
def test_outputs_without_a_row_per_input_row_are_refused_when_batches_are_split(outputs):
    """A request larger than max_batch_size with an output not batched along axis 0: a scalar
    was numpy's 'zero-dimensional arrays cannot be concatenated' (INTERNAL), a fixed [5]
    output came back as [15], three chunks' tables end to end, as if it were the request's.
    TF Serving refuses such a batch: FAILED_PRECONDITION naming the output."""
    settings = BatchingSettings(max_batch_size=32, pad_variable_length_inputs=True)

    def runner(signature, inputs):
        every = unbatched_runner(signature, inputs)
        return {name: every[name] for name in ("sum", *outputs)}

    batcher = Batcher(runner, settings)
    try:
        with pytest.raises(ServingError) as raised:
            batcher.submit("serving_default", {"ids": np.ones((70, 4), np.int32)})
        alone = batcher.submit("serving_default", {"ids": np.ones((32, 4), np.int32)})
    finally:
        batcher.close()
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"output {outputs[0]}" in raised.value.message
    # A batch of one request is its call's outputs, as TF Serving passes them on unsplit.
    assert set(alone) == {"sum", *outputs} and len(alone["sum"]) == 32


def test_outputs_without_a_row_per_input_row_are_refused_when_requests_share_a_call():
    """Two requests merged into one call with a fixed [5] output: each got a slice of the
    table (rows 0 and 1 of it) as its own answer. Now each hears FAILED_PRECONDITION."""
    settings = BatchingSettings(
        # full at two rows, the batch leaves as the second request arrives
        max_batch_size=2,
        batch_timeout_micros=5_000_000,
        pad_variable_length_inputs=True,
    )
    sizes: list[int] = []
    batcher = Batcher(unbatched_runner, settings, observe_batch=sizes.append)
    barrier = threading.Barrier(2)

    def send(length):
        barrier.wait()
        try:
            return batcher.submit("serving_default", {"ids": np.ones((1, length), np.int32)})
        except ServingError as error:
            return error

    try:
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(send, [1, 2]))
    finally:
        batcher.close()
    assert sizes == [2]
    for answer in answers:
        assert isinstance(answer, ServingError)
        assert answer.code == grpc.StatusCode.FAILED_PRECONDITION


def test_a_request_larger_than_the_whole_queue_is_refused_whatever_the_load():
    """A request of more rows than the queue holds (max_batch_size x max_enqueued_batches) ran
    when it found the queue empty, and was UNAVAILABLE ('queue is full', which clients retry)
    whenever any request was queued: under steady load retried for ever, never answered.
    Found by the adversarial pass breaknew6b. As TF Serving's input batch size limit, it is
    INVALID_ARGUMENT, loaded or not; a request of exactly the capacity is answered."""
    settings = BatchingSettings(
        max_batch_size=4, max_enqueued_batches=2, pad_variable_length_inputs=True
    )
    calls: list[int] = []
    batcher = Batcher(per_token_runner(calls), settings)
    try:
        with pytest.raises(ServingError) as raised:
            batcher.submit("serving_default", {"ids": np.ones((9, 3), np.int32)})
        whole = batcher.submit("serving_default", {"ids": np.ones((8, 3), np.int32)})
    finally:
        batcher.close()
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "9 rows" in raised.value.message and "8" in raised.value.message
    assert len(whole["sum"]) == 8 and calls == [4, 4]
