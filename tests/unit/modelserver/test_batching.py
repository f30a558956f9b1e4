"""Batch merging, padding, slicing and the queue (with a plain-Python runner, no TF)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from serving.modelserver.batch_scheduler import BatchScheduler
from serving.modelserver.batching import Batcher
from serving.modelserver.config import BatchingSettings
from serving.modelserver.errors import ServingError
from serving.tensor_batches import merge_inputs, split_outputs


def test_merge_pads_right_with_zero_to_the_longest():
    first = {"ids": np.array([[1, 2]], np.int32), "other": np.array([[7]], np.int32)}
    second = {"ids": np.array([[3, 4, 5], [6, 0, 0]], np.int32), "other": np.array([[8], [9]])}
    merged = merge_inputs([first, second], pad=True)
    np.testing.assert_array_equal(merged["ids"], [[1, 2, 0], [3, 4, 5], [6, 0, 0]])
    np.testing.assert_array_equal(merged["other"], [[7], [8], [9]])
    assert merged["ids"].dtype == np.int32


def test_merge_without_padding_concatenates():
    parts = [{"x": np.ones((1, 2))}, {"x": np.zeros((2, 2))}]
    assert merge_inputs(parts, pad=False)["x"].shape == (3, 2)


def test_split_outputs_slices_rows_back():
    outputs = {"p": np.arange(12).reshape(6, 2), "s": np.arange(6)}
    first, second, third = split_outputs(outputs, [1, 3, 2])
    np.testing.assert_array_equal(first["p"], [[0, 1]])
    np.testing.assert_array_equal(second["s"], [1, 2, 3])
    np.testing.assert_array_equal(third["p"], [[8, 9], [10, 11]])


def row_sums(signature, inputs):
    """A runner whose rows do not depend on padding (like a model that masks pad id 0)."""
    return {
        "sum": inputs["ids"].sum(axis=1),
        "rows": np.full(len(inputs["ids"]), len(inputs["ids"])),
    }


def test_concurrent_requests_are_merged_and_answered():
    settings = BatchingSettings(
        max_batch_size=64,
        batch_timeout_micros=200_000,
        num_batch_threads=1,
        pad_variable_length_inputs=True,
    )
    sizes: list[int] = []
    batcher = Batcher(row_sums, settings, observe_batch=sizes.append)
    barrier = threading.Barrier(8)
    requests = [{"ids": np.full((1, length), length, np.int32)} for length in range(1, 9)]

    def send(inputs):
        barrier.wait()
        return batcher.submit("serving_default", inputs)

    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, requests))
    finally:
        batcher.close()
    for length, answer in zip(range(1, 9), answers, strict=True):
        assert answer["sum"].tolist() == [length * length]  # padding added only zeros
    assert sum(sizes) == 8
    assert len(sizes) < 8  # at least two requests shared a TF call


def test_full_queue_is_unavailable():
    release, started = threading.Event(), threading.Event()

    def blocked(signature, inputs):
        started.set()
        release.wait(timeout=30)
        return row_sums(signature, inputs)

    settings = BatchingSettings(
        max_batch_size=1, batch_timeout_micros=0, max_enqueued_batches=1, num_batch_threads=1
    )
    batcher = Batcher(blocked, settings)
    request = {"ids": np.ones((1, 2), np.int32)}
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(batcher.submit, "s", request)
        assert started.wait(timeout=30)  # the worker holds the first request
        queued = pool.submit(batcher.submit, "s", request)
        wait_until(lambda: batcher.pending_rows() == 1)
        with pytest.raises(ServingError) as raised:
            batcher.submit("s", request)
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert raised.value.http_status == 503
        release.set()
        assert running.result(timeout=30)["sum"].tolist() == [2]
        assert queued.result(timeout=30)["sum"].tolist() == [2]
    batcher.close()


def test_a_skipped_request_does_not_break_the_queue():
    """Taking a later request past a skipped one must not compare their numpy inputs."""
    release, started = threading.Event(), threading.Event()

    def first_blocks(signature, inputs):
        started.set()
        release.wait(timeout=30)
        return row_sums(signature, inputs)

    settings = BatchingSettings(
        max_batch_size=2, batch_timeout_micros=0, max_enqueued_batches=8, num_batch_threads=1
    )
    batcher = Batcher(first_blocks, settings)
    small = {"ids": np.ones((1, 2), np.int32)}
    pair = {"ids": np.ones((2, 3), np.int32)}
    try:
        with ThreadPoolExecutor(4) as pool:
            running = pool.submit(batcher.submit, "s", small)
            assert started.wait(timeout=30)
            queued = [pool.submit(batcher.submit, "s", small)]
            wait_until(lambda: batcher.pending_rows() == 1)
            queued.append(pool.submit(batcher.submit, "s", pair))  # 1 + 2 rows > 2: skipped
            wait_until(lambda: batcher.pending_rows() == 3)
            queued.append(pool.submit(batcher.submit, "s", small))  # joins the first batch
            wait_until(lambda: batcher.pending_rows() == 4)
            release.set()
            assert running.result(timeout=30)["sum"].tolist() == [2]
            answers = [future.result(timeout=30)["sum"].tolist() for future in queued]
    finally:
        batcher.close()
    assert answers == [[2], [3, 3], [2]]


def test_runner_errors_reach_every_request():
    def failing(signature, inputs):
        raise ValueError("boom")

    batcher = Batcher(failing, BatchingSettings(num_batch_threads=1))
    with pytest.raises(ValueError, match="boom"):
        batcher.submit("s", {"ids": np.ones((1, 1))})
    batcher.close()


def test_closed_batcher_runs_requests_directly():
    batcher = Batcher(row_sums, BatchingSettings())
    batcher.close()
    assert batcher.submit("s", {"ids": np.ones((2, 3))})["sum"].tolist() == [3, 3]


def wait_until(condition, attempts: int = 500) -> None:
    """Bounded wait for another thread to reach a state."""
    event = threading.Event()
    for _ in range(attempts):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition never became true")


def test_versions_share_the_scheduler_threads_and_batch_while_they_wait():
    """One batch thread for two models (TF Serving's shared scheduler): while the first
    model's call runs, the second model's requests queue and then leave as one batch."""
    release, started = threading.Event(), threading.Event()

    def first_blocks(signature, inputs):
        started.set()
        release.wait(timeout=30)
        return row_sums(signature, inputs)

    settings = BatchingSettings(max_batch_size=8, batch_timeout_micros=0, num_batch_threads=1)
    scheduler = BatchScheduler(settings.num_batch_threads)
    sizes: list[int] = []
    first = Batcher(first_blocks, settings, scheduler=scheduler)
    second = Batcher(row_sums, settings, observe_batch=sizes.append, scheduler=scheduler)
    request = {"ids": np.ones((1, 2), np.int32)}
    try:
        with ThreadPoolExecutor(4) as pool:
            running = pool.submit(first.submit, "s", request)
            assert started.wait(timeout=30)
            queued = [pool.submit(second.submit, "s", request) for _ in range(3)]
            wait_until(lambda: second.pending_rows() == 3)  # no thread free for them
            release.set()
            assert running.result(timeout=30)["sum"].tolist() == [2]
            assert [future.result(timeout=30)["sum"].tolist() for future in queued] == [[2]] * 3
    finally:
        first.close()
        second.close()
        scheduler.close()
    assert sizes == [3]


def thread_names(names: list[str]):
    """A row_sums runner that records the thread each call runs in."""

    def runner(signature, inputs):
        names.append(threading.current_thread().name)
        return row_sums(signature, inputs)

    return runner


def test_a_lone_ready_request_runs_its_batch_in_its_own_thread():
    """Timeout 0 and a free slot: the batch a batch thread would take at once runs in the
    request's thread (no handoff), and is still a batch (observed, answered whole)."""
    names: list[str] = []
    sizes: list[int] = []
    settings = BatchingSettings(batch_timeout_micros=0, num_batch_threads=1)
    batcher = Batcher(thread_names(names), settings, observe_batch=sizes.append)
    try:
        answer = batcher.submit("s", {"ids": np.array([[1, 2], [3, 0]], np.int32)})
    finally:
        batcher.close()
    assert answer["sum"].tolist() == [3, 3]
    assert names == [threading.current_thread().name]
    assert sizes == [2]


def test_a_request_waiting_for_its_timeout_is_run_by_a_batch_thread():
    names: list[str] = []
    settings = BatchingSettings(batch_timeout_micros=1000, num_batch_threads=1)
    batcher = Batcher(thread_names(names), settings)
    try:
        assert batcher.submit("s", {"ids": np.ones((1, 2), np.int32)})["sum"].tolist() == [2]
    finally:
        batcher.close()
    assert names == ["batcher-0"]


def test_running_batches_never_exceed_num_batch_threads():
    """Batches claimed by request threads count against num_batch_threads as the batch
    threads' own do: with 16 concurrent senders at most 2 calls run at once."""
    lock = threading.Lock()
    running = [0]
    most = [0]

    def counting(signature, inputs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.002)  # long enough for the senders to overlap
        with lock:
            running[0] -= 1
        return row_sums(signature, inputs)

    settings = BatchingSettings(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=2)
    batcher = Batcher(counting, settings)
    requests = [{"ids": np.full((1, 3), index, np.int32)} for index in range(200)]
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda inputs: batcher.submit("s", inputs), requests))
    finally:
        batcher.close()
    assert [answer["sum"].tolist() for answer in answers] == [[3 * i] for i in range(200)]
    assert most[0] == 2


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
