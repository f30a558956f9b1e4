"""Batch merging, padding, slicing and the queue (with a plain-Python runner, no TF)."""

from __future__ import annotations

import threading
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
