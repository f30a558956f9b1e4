"""A worker's metric writes held and made together, every ``GATEWAY_METRICS_FLUSH_SECONDS``.

A lone qa request made eleven writes into prometheus-client's values (one counter, four
histogram observations: a bucket and a sum each; under gunicorn each a write into the
worker's memory-mapped file). Measured inside whole requests, with every cache cold from the
request's other work, they cost ~0.05 ms of the request's ~1.05 ms of gateway CPU
(issue 9, round 17; the same writes in a tight loop cost a fifth of that). Held, a request
only appends its values to a queue; a flusher thread (a greenlet under gevent) makes the
writes of every request of the last interval together, warm. ``/metrics`` makes the
scraping worker's writes first, so what a worker answers includes its own requests; another
worker's requests show up at most one interval later (Prometheus scrapes every 15-60 s).

What is held when a worker exits normally is written (``atexit``: gunicorn's workers leave
through ``sys.exit``); a worker killed (``SIGKILL``, the OOM killer) loses at most its last
interval's values, as it loses the access lines of the requests it was answering.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from serving.gateway.pid import current_pid

# A bound on what one worker holds between flushes (e.g. 3,000 requests/s at 0.1 s is ~1,500
# writes): past it the request that reaches it makes them all, so memory stays bounded however
# long the flusher waits for the CPU.
HOLD_LIMIT = 4096

# Every HeldWrites that holds writes in this process, flushed at exit; weak, so an app a test
# drops is not kept alive by it.
_HOLDING: weakref.WeakSet[HeldWrites] = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []

Write = Callable[..., object]


class HeldWrites:
    """Runs metric writes at once (``seconds == 0``) or holds them for up to ``seconds``.

    ``on_error`` gets an ``OSError`` a write raised (a metrics file that cannot grow: a full
    disk, a removed folder); the write is skipped, the others go on.
    """

    def __init__(self, seconds: float, on_error: Callable[[OSError], None]) -> None:
        self.seconds = seconds
        self._on_error = on_error
        self._held: deque[tuple[Write, tuple[Any, ...]]] = deque()
        self._pid = 0  # the process whose flusher runs (0: none yet)
        self._start_lock = threading.Lock()
        self.submit: Callable[..., None] = self._hold if seconds > 0 else self._run

    def flush(self) -> None:
        """Make every held write now, in the order they came (thread-safe: ``deque.popleft``
        hands each write to one caller)."""
        held = self._held
        while held:
            try:
                write, args = held.popleft()
            except IndexError:  # another thread took the last one
                return
            self._run(write, *args)

    def _run(self, write: Write, *args: Any) -> None:
        try:
            write(*args)
        except OSError as error:
            self._on_error(error)

    def _hold(self, write: Write, *args: Any) -> None:
        if self._pid != current_pid():
            self._start()
        held = self._held
        held.append((write, args))
        if len(held) >= HOLD_LIMIT:
            self.flush()

    def _start(self) -> None:
        """Start this process's flusher (once: the first held write in a process)."""
        with self._start_lock:
            pid = current_pid()
            if self._pid == pid:
                return
            if self._pid:  # a forked child: what the parent held is the parent's to write
                self._held.clear()
            self._pid = pid
            _HOLDING.add(self)
            if not _EXIT_HOOK:
                _EXIT_HOOK.append(True)
                atexit.register(_flush_all)
            flusher = threading.Thread(
                target=_flush_every,
                args=(weakref.ref(self), self.seconds, pid),
                name="gateway-metrics-flush",
                daemon=True,
            )
            flusher.start()


def _flush_every(ref: weakref.ref[HeldWrites], seconds: float, pid: int) -> None:
    """Flush ``ref``'s writes every ``seconds`` until it is gone (an app dropped)."""
    while True:
        time.sleep(seconds)
        holder = ref()
        if holder is None or holder._pid != pid:
            return
        holder.flush()
        del holder  # not kept alive across the sleep


def _flush_all() -> None:
    """At exit: make what every holder of this process still holds."""
    pid = current_pid()
    for holder in list(_HOLDING):
        if holder._pid == pid:
            holder.flush()
