"""This process's id without a system call per read.

``os.getpid`` is a real system call on glibc >= 2.25 (the cached pid was dropped), and the
gateway asks for it several times per request: prometheus_client's multiprocess values
check it on every write (a forked child must not write into its parent's files), and the
per-process gRPC channel and version poller check it before use. The id only changes in a
forked child, so it is read once and again after every ``fork`` (``os.register_at_fork``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

# One slot, rewritten in each forked child; read by a C-level callable (no Python frame per
# read: prometheus_client calls it on every metric write).
_PID = [os.getpid()]


def _forked() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)

current_pid: Callable[[], int] = functools.partial(_PID.__getitem__, 0)
"""``os.getpid()``, read from memory (right in a forked child too)."""
