"""What a worker records per request (metric values, access lines) held and written together.

A lone qa request made eleven writes into prometheus-client's values (one counter, four
histogram observations: a bucket and a sum each; under gunicorn each a write into the
worker's memory-mapped file) and one ``write`` system call for its access line. Measured
inside whole requests, with every cache cold from the request's other work, the writes cost
~0.05 ms and the line ~0.05 ms of the request's ~1.1 ms of gateway CPU (issue 9; the same
work in a tight loop costs a fraction of that). Held, a request only appends to a queue; a
flusher thread (a greenlet under gevent) writes every request of the last interval together,
warm, the lines in one system call: nginx's buffered access log (``access_log ... buffer=
flush=``) and the Prometheus clients that aggregate before they export do the same.

``/metrics`` writes the scraping worker's values first, and any other log line of the
gateway writes the held lines before it (the log keeps its order); another worker's latest
requests show up at most one interval later. What is held when a process exits normally is
written (``atexit``: gunicorn's workers leave through ``sys.exit`` on a graceful stop or a
max-requests restart); a worker killed (``SIGKILL``: the OOM killer, a worker past its
timeout) loses at most its last interval, as it loses the requests it was answering.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from serving.gateway.pid import current_pid

T = TypeVar("T")

# A bound on what one worker holds between flushes (e.g. 3,000 requests/s at 0.1 s is ~1,500
# items): past it the request that reaches it writes them all, so memory stays bounded however
# long the flusher waits for the CPU.
HOLD_LIMIT = 4096
FLUSHER_NAME = "gateway-flush"

# Every Held that holds items in this process, flushed at exit; weak, so an app a test drops
# is not kept alive by it.
_HOLDING: weakref.WeakSet[Held[object]] = weakref.WeakSet()
_EXIT_HOOK: list[bool] = []


class Held(Generic[T]):
    """Items handed to ``write_all`` at once (``seconds == 0``) or held up to ``seconds``.

    ``write_all(items)`` gets the items in the order they were added; it must not raise (a
    write that fails is its to report).
    """

    def __init__(self, seconds: float, write_all: Callable[[list[T]], None]) -> None:
        self.seconds = seconds
        self._write_all = write_all
        self._held: deque[T] = deque()
        self._pid = 0  # the process whose flusher runs (0: none yet)
        self._start_lock = threading.Lock()
        self.add: Callable[[T], None] = self._hold if seconds > 0 else self._write_one

    def flush(self) -> None:
        """Write every held item now (thread-safe: ``deque.popleft`` hands each item to one
        caller)."""
        held = self._held
        items: list[T] = []
        while held:
            try:
                items.append(held.popleft())
            except IndexError:  # another thread took the last one
                break
        if items:
            self._write_all(items)

    def _write_one(self, item: T) -> None:
        self._write_all([item])

    def _hold(self, item: T) -> None:
        if self._pid != current_pid():
            self._start()
        held = self._held
        held.append(item)
        if len(held) >= HOLD_LIMIT:
            self.flush()

    def _start(self) -> None:
        """Start this process's flusher (once: the first held item in a process)."""
        with self._start_lock:
            pid = current_pid()
            if self._pid == pid:
                return
            if self._pid:  # a forked child: what the parent held is the parent's to write
                self._held.clear()
            self._pid = pid
            _HOLDING.add(self)  # type: ignore[arg-type]
            if not _EXIT_HOOK:
                _EXIT_HOOK.append(True)
                atexit.register(_flush_all)
            flusher = threading.Thread(
                target=_flush_every,
                args=(weakref.ref(self), self.seconds, pid),
                name=FLUSHER_NAME,
                daemon=True,
            )
            flusher.start()


def _flush_every(ref: weakref.ref[Held[T]], seconds: float, pid: int) -> None:
    """Flush ``ref``'s items every ``seconds`` until it is gone (an app dropped)."""
    while True:
        time.sleep(seconds)
        holder = ref()
        if holder is None or holder._pid != pid:
            return
        holder.flush()
        del holder  # not kept alive across the sleep


def _flush_all() -> None:
    """At exit: write what every holder of this process still holds."""
    pid = current_pid()
    for holder in list(_HOLDING):
        if holder._pid == pid:
            holder.flush()
