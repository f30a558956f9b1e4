"""CPU time and resident memory of processes, from Linux ``/proc`` (benchmarks only)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the given processes (``utime + stime``, fields 14 and 15
    of ``/proc/<pid>/stat``, proc(5)); a process that is gone counts 0."""
    return sum(user_system_seconds(pids))


def user_system_seconds(pids: Iterable[int]) -> tuple[float, float]:
    """(user, system) CPU seconds of the given processes, every thread counted, those that
    exited too (``utime``, ``stime``: fields 14 and 15 of ``/proc/<pid>/stat``, proc(5); in
    clock ticks, 10 ms); a process that is gone counts 0."""
    user = system = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces: count fields after its closing ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        user += int(fields[11])
        system += int(fields[12])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def thread_seconds(pids: Iterable[int]) -> dict[str, float]:
    """On-CPU seconds of the given processes' live threads, summed per thread name: ``main``
    for each process's first thread, else its ``comm`` (``event_engine``, ``tf_Compute``,
    ``python`` for a thread Python started). From ``/proc/<pid>/task/<tid>/schedstat``'s first
    field (nanoseconds on a CPU, sched-stats.rst): finer than ``stat``'s 10 ms ticks, but a
    thread that has exited is no longer counted, so compare two readings of long-lived threads."""
    found: dict[str, float] = {}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                name = "main" if task.name == str(pid) else (task / "comm").read_text().strip()
                nanoseconds = int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue  # the thread ended while being read
            found[name] = found.get(name, 0.0) + nanoseconds / 1e9
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (``VmRSS`` of ``/proc/<pid>/status``); 0 if gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """Direct children of a process (``/proc/<pid>/task/<pid>/children``)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def load_average() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return "/".join(f"{value:.1f}" for value in os.getloadavg())
