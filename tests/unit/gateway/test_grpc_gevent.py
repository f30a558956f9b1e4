"""CallPool: the gevent worker's wait for gRPC calls in native threads (no monkey-patching here).

The pool is driven from greenlets of this (unpatched) process: ``apply`` runs its function in a
native thread and the greenlet gets the result or the exception; many calls wait at once.
"""

from __future__ import annotations

import operator
import os
import resource
import threading

import gevent
import pytest

from serving.gateway.grpc_gevent import CallPool

BOUND = 30.0  # seconds; a bound on waits, never an assertion


def test_apply_gives_the_result_and_raises_the_error_in_the_greenlet() -> None:
    pool = CallPool()
    added = gevent.spawn(pool.apply, operator.add, (2, 3))
    failed = gevent.spawn(pool.apply, int, ("not a number",))
    gevent.joinall([added, failed], timeout=BOUND)
    assert added.value == 5
    assert isinstance(failed.exception, ValueError)


def test_calls_wait_in_their_own_threads_at_once() -> None:
    # 16 calls that return only when all 16 are running: gevent's hub pool (10 threads, one
    # of them held by grpcio's callback loop) would leave some queued, breaking the barrier.
    pool = CallPool()
    barrier = threading.Barrier(16, timeout=BOUND)
    calls = [gevent.spawn(pool.apply, barrier.wait) for _ in range(16)]
    gevent.joinall(calls, timeout=BOUND)
    assert sorted(call.value for call in calls) == list(range(16))
    assert pool.threads == 16


def test_a_killed_waiter_leaves_the_pool_usable() -> None:
    pool = CallPool()
    release, running = threading.Event(), threading.Event()

    def held() -> str:
        running.set()
        release.wait(BOUND)
        return "dropped"

    waiting = gevent.spawn(pool.apply, held)
    while not running.is_set():  # bounded by BOUND in held()
        gevent.sleep(0.01)
    waiting.kill(block=True, timeout=BOUND)  # e.g. gunicorn's graceful timeout
    release.set()
    assert gevent.spawn(pool.apply, operator.mul, (6, 7)).get(timeout=BOUND) == 42
    assert isinstance(waiting.value, gevent.GreenletExit)


@pytest.mark.parametrize("size", [1, 3])
def test_threads_are_reused_between_calls(size: int) -> None:
    pool = CallPool()
    for _ in range(5):
        calls = [gevent.spawn(pool.apply, operator.neg, (n,)) for n in range(size)]
        gevent.joinall(calls, timeout=BOUND)
        assert [call.value for call in calls] == [-n for n in range(size)]
    assert pool.threads <= size


def test_calls_run_when_no_file_descriptor_is_left_for_a_thread() -> None:
    # A thread is woken through an eventfd of its own; under a low `ulimit -n` with every
    # descriptor taken, a new thread falls back to a lock (a call must not fail for that).
    pool = CallPool()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    taken: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
        with pytest.raises(OSError):  # bounded: the limit was just lowered
            while True:
                taken.append(os.eventfd(0))
        for _ in range(2):  # new threads, then the same ones again
            barrier = threading.Barrier(3, timeout=BOUND)
            calls = [gevent.spawn(pool.apply, barrier.wait) for _ in range(3)]
            gevent.joinall(calls, timeout=BOUND)
            assert sorted(call.value for call in calls) == [0, 1, 2]
        assert pool.threads == 3
    finally:
        for fd in taken:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_thread_that_cannot_start_leaves_no_descriptor_or_slot_behind() -> None:
    # The only fault here that cannot be made real in a test process: the system refusing a
    # thread (RuntimeError "can't start new thread"). Each such call kept its eventfd open and
    # its slot taken: after max_threads of them every later call waited for good.
    pool = CallPool(max_threads=2)
    opened = len(os.listdir("/proc/self/fd"))
    start = pool._start_thread

    def refuse(*args: object) -> None:
        raise RuntimeError("can't start new thread")

    pool._start_thread = refuse
    for _ in range(3):
        with pytest.raises(RuntimeError):
            gevent.spawn(pool.apply, operator.neg, (1,)).get(timeout=BOUND)
    assert len(os.listdir("/proc/self/fd")) == opened
    pool._start_thread = start
    assert gevent.spawn(pool.apply, operator.neg, (1,)).get(timeout=BOUND) == -1
