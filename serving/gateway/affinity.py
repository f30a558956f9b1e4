"""One CPU per gateway worker, on request (``GATEWAY_CPU_AFFINITY=per-worker``; issue 9).

A lone request wakes three processes in turn (the client, the worker, the model server) and,
inside the worker, its event loop, a call-wait thread and grpcio's EventEngine threads. Left to
the scheduler, those threads wake each other across CPUs, on cold caches (loadtests/README.md,
round 9: the same instructions cost more CPU time at one client than at eight). Pinned, a
worker's threads run on one CPU, where a wake-up is a switch on a warm cache.

Each worker gets the CPU of the master's allowed set (``os.sched_getaffinity``) that the fewest
live workers hold, the lowest such in the set's order; a restarted worker takes the CPU its
predecessor freed. Off by default: under a CPU quota without a cpuset (a Kubernetes pod
without the static CPU manager policy) the allowed set is the whole node, and every pod's
workers would pile onto its first CPUs. Use it where the allowed set is the gateway's own (a
laptop or VM it has to itself, ``taskset``, a cpuset, the static CPU manager policy).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

LOGGER = logging.getLogger("serving.gateway.affinity")
MODES = ("off", "per-worker")
CPU_ATTRIBUTE = "gateway_cpu"  # set on gunicorn's worker object by the master, read after fork


def affinity_mode(environ: dict[str, str]) -> str:
    """``GATEWAY_CPU_AFFINITY`` (``off`` or ``per-worker``; default ``off``).

    Raises ValueError for another value (gunicorn then refuses to start, naming it).
    """
    mode = environ.get("GATEWAY_CPU_AFFINITY", "off").strip().lower() or "off"
    if mode not in MODES:
        raise ValueError(f"GATEWAY_CPU_AFFINITY must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def choose_cpu(allowed: Sequence[int], taken: Iterable[int]) -> int:
    """The CPU of ``allowed`` (non-empty, in order) the fewest of ``taken`` (live workers'
    CPUs) hold; the first such."""
    counts = {cpu: 0 for cpu in allowed}
    for cpu in taken:
        if cpu in counts:
            counts[cpu] += 1
    return min(allowed, key=lambda cpu: counts[cpu])


def assign(workers: Iterable[Any], worker: Any) -> None:
    """In the master, before ``worker`` forks: note its CPU on it (:data:`CPU_ATTRIBUTE`),
    chosen against the live ``workers``' CPUs."""
    allowed = sorted(os.sched_getaffinity(0))
    taken = [getattr(other, CPU_ATTRIBUTE, None) for other in workers if other is not worker]
    setattr(worker, CPU_ATTRIBUTE, choose_cpu(allowed, [cpu for cpu in taken if cpu is not None]))


def pin(worker: Any) -> int | None:
    """In the worker, right after the fork and before it starts a thread: run this process on
    the CPU :func:`assign` noted (threads started later inherit it). Returns it, or None
    (none noted, or the CPU went offline since: the worker then runs unpinned, with a
    warning, rather than failing to boot again and again)."""
    cpu = getattr(worker, CPU_ATTRIBUTE, None)
    if cpu is None:
        return None
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as error:
        LOGGER.warning("cannot pin worker to CPU %s (%s): running unpinned", cpu, error)
        return None
    return int(cpu)
