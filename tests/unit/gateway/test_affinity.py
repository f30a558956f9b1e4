"""Which CPU a gateway worker gets (``serving.gateway.affinity``), without forking."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from serving.gateway.affinity import CPU_ATTRIBUTE, affinity_mode, assign, choose_cpu, pin


@pytest.mark.parametrize(
    ("allowed", "taken", "chosen"),
    [
        ([0, 1], [], 0),
        ([0, 1], [0], 1),
        ([0, 1], [1], 0),  # a restarted worker takes the CPU its predecessor freed
        ([0, 1], [0, 1], 0),  # more workers than CPUs: round the set again
        ([0, 1], [0, 1, 0], 1),
        ([2, 5, 7], [2, 5], 7),  # the master's own set (taskset, a cpuset), not 0..n-1
        ([3], [3, 3], 3),
        ([0, 1], [9], 0),  # a CPU outside the set (the set changed) counts for nothing
    ],
)
def test_the_least_held_cpu_first_in_the_set(
    allowed: list[int], taken: list[int], chosen: int
) -> None:
    assert choose_cpu(allowed, taken) == chosen


@pytest.mark.parametrize(
    ("value", "mode"), [(None, "off"), ("", "off"), ("off", "off"), (" Per-Worker ", "per-worker")]
)
def test_modes(value: str | None, mode: str) -> None:
    environ = {} if value is None else {"GATEWAY_CPU_AFFINITY": value}
    assert affinity_mode(environ) == mode


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="one of off, per-worker, not 'on'"):
        affinity_mode({"GATEWAY_CPU_AFFINITY": "on"})


def test_assign_skips_the_worker_itself_and_workers_without_a_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1})
    first, unpinned, new = SimpleNamespace(), SimpleNamespace(), SimpleNamespace()
    setattr(first, CPU_ATTRIBUTE, 0)
    assign([first, unpinned, new], new)
    assert getattr(new, CPU_ATTRIBUTE) == 1


def test_a_cpu_that_cannot_be_taken_leaves_the_worker_unpinned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A CPU id past any machine's: sched_setaffinity refuses it (EINVAL), as for an offline one.
    worker = SimpleNamespace(**{CPU_ATTRIBUTE: 1 << 20})
    before = os.sched_getaffinity(0)
    assert pin(worker) is None
    assert os.sched_getaffinity(0) == before
    assert "running unpinned" in caplog.text


def test_no_cpu_noted_no_pin() -> None:
    assert pin(SimpleNamespace()) is None
