"""Per-thread CPU readings (procstat.thread_seconds) and thread_cost's arithmetic."""

from __future__ import annotations

import os
import threading

import pytest

from loadtests import procstat
from loadtests.thread_cost import Tally, per_request, split_text


def _spin(rounds: int) -> None:
    total = 0
    for value in range(rounds):
        total += value * value


def test_thread_seconds_reads_this_process_by_thread_name() -> None:
    before = procstat.thread_seconds([os.getpid()])
    _spin(200_000)
    worker = threading.Thread(target=_spin, args=(200_000,))
    worker.start()
    during = procstat.thread_seconds([os.getpid()])  # the spinning thread is alive
    worker.join()
    assert before["main"] > 0
    assert during["main"] > before["main"]  # the main thread's spin, in nanoseconds
    others = {name: value for name, value in during.items() if name != "main"}
    assert others  # the started thread, under its comm name


def test_a_process_that_is_gone_counts_nothing() -> None:
    assert procstat.thread_seconds([2**22 + 12345]) == {}
    assert procstat.user_system_seconds([2**22 + 12345]) == (0.0, 0.0)


def test_user_and_system_seconds_of_this_process() -> None:
    user, system = procstat.user_system_seconds([os.getpid()])
    _spin(2_000_000)  # user time, a few clock ticks at least
    for _ in range(20_000):
        os.stat("/")  # system calls: kernel time
    user_after, system_after = procstat.user_system_seconds([os.getpid()])
    assert user_after > user
    assert system_after >= system
    assert procstat.cpu_seconds([os.getpid()]) == pytest.approx(user_after + system_after, abs=0.05)


def test_per_request_and_the_printed_line() -> None:
    split = per_request({"main": 1.0}, {"main": 1.9, "python": 0.1}, 1000)
    assert split == pytest.approx({"main": 0.9, "python": 0.1})  # seconds -> ms per request
    assert split_text({"main": 0.9, "python": 0.1, "event_engine": 0.0004}) == (
        "main 0.900, python 0.100"
    )
    rounds = [{"main": 0.9, "python": 0.1}, {"main": 1.1}]
    tally = Tally(rounds, [800.0, 600.0], [9.0, 11.0], [20.0, 30.0])
    assert tally.line("after") == (
        "after: 1.050 ms CPU/request (main 1.000, python 0.050); rounds 1.000 1.100; "
        "700 req/s, p50 10.00 ms, p99 25.0 ms"
    )
    tally.system_share = [0.10, 0.14]
    assert "(main 1.000, python 0.050; in the kernel 12%)" in tally.line("after")
