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
gateway (gunicorn's too: ``serving.gateway.gunicorn_logs``) writes the held lines before it
(the log keeps its order); another worker's latest requests show up at most one interval
later. One writer at a time (a lock per holder): a scrape or a line that comes while the
flusher writes waits for it, so neither overtakes items taken before it (gthread: a scrape
missed its own worker's values, a warning went before older access lines, concurrent
flushes reordered lines). An idle flusher sleeps until an item comes (no wake-ups; it woke
every interval, twice per worker, and once more per app a process kept); a new interval
(``Held.hold_for``) applies at once.

What is held when a process exits normally is written (``atexit``: gunicorn's workers leave
through ``sys.exit`` on a graceful stop, a max-requests restart, and a timeout's
``SIGABRT``); a worker killed (``SIGKILL``: the OOM killer, a worker that did not leave after
its timeout's ``SIGABRT``) loses at most its last interval, as it loses the requests it was
answering.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from typing import Any, Generic, TypeVar

from serving.gateway.pid import current_pid

T = TypeVar("T")

LOGGER = logging.getLogger("serving.gateway.holding")
# A bound on what one worker holds between flushes (e.g. 3,000 requests/s at 0.1 s is ~1,500
# items): past it the request that reaches it writes them all, so memory stays bounded however
# long the flusher waits for the CPU.
HOLD_LIMIT = 4096
FLUSHER_NAME = "gateway-flush"

# Every Held (weak, so an app a test drops is not kept alive by it): those holding items in
# this process are flushed at exit; all are emptied in a forked child (its items are the
# parent's to write) and get new locks there (a lock some thread of the parent held at the
# fork would stay held in the child for ever; a lock passed in is its owner's to renew, as
# logging does for handlers').
_ALL: weakref.WeakSet[Held[Any]] = weakref.WeakSet()


class Held(Generic[T]):
    """Items handed to ``write_all`` at once (``seconds == 0``) or held up to ``seconds``.

    ``write_all(items)`` gets the items in the order they were added, one call at a time
    (under ``lock``: pass the lock ``write_all`` itself takes, e.g. a logging handler's, so the
    two are one lock and cannot deadlock; default a new ``RLock``). It should not raise: an
    exception is logged once per holder and those items are dropped; later ones are written.
    """

    def __init__(
        self,
        seconds: float,
        write_all: Callable[[list[T]], None],
        lock: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.seconds = seconds
        self._write_all = write_all
        self._held: deque[T] = deque()
        self._own_lock = lock is None
        self._lock: AbstractContextManager[Any] = lock if lock is not None else threading.RLock()
        _ALL.add(self)
        self._pid = 0  # the process whose flusher runs (0: none yet)
        self._start_lock = threading.Lock()
        self._wake = threading.Event()  # the flusher's (Held._start): set, it looks again
        self._awake = False  # the flusher waits out an interval (not for an item)
        self._failed = False
        self.add: Callable[[T], None] = self._hold if seconds > 0 else self._write_one

    def hold_for(self, seconds: float) -> None:
        """Hold items up to ``seconds`` from now on (0: write each at once); what is held is
        written first. The same holder stays: an item given while this runs (a thread that
        read ``add`` before) is written like any other, never left in a holder dropped."""
        with self._lock:
            self.seconds = seconds
            self.add = self._hold if seconds > 0 else self._write_one
            self._flush_held()
        self._wake.set()  # a flusher waiting out the old interval starts the new one

    def flush(self) -> bool:
        """Write every held item now; whether there was any. Waits for a write under way
        (the flusher's, another thread's), so what was held before the call is written when
        it returns."""
        with self._lock:
            return self._flush_held()

    def _flush_held(self) -> bool:
        held = self._held
        items: list[T] = []
        while held:
            try:
                items.append(held.popleft())
            except IndexError:  # another thread took the last one
                break
        if not items:
            return False
        self._write(items)
        return True

    def _write(self, items: list[T]) -> None:
        try:
            self._write_all(items)
        except Exception:  # a flusher that died here left every later item held
            if not self._failed:
                self._failed = True
                # The log may not be writable either (stderr closed): nothing more to tell.
                with suppress(Exception):
                    LOGGER.exception("%d held items could not be written (dropped)", len(items))

    def _write_one(self, item: T) -> None:
        if self._held:  # held before the interval became 0: they go first
            self.flush()
        self._write([item])

    def _hold(self, item: T) -> None:
        if self._pid != current_pid():
            self._start()
        held = self._held
        held.append(item)
        # Read after the append; the flusher clears it before it looks at the queue a last
        # time: one of the two sees the other (no item left held by an idle flusher).
        if not self._awake:
            self._awake = True
            self._wake.set()
        if len(held) >= HOLD_LIMIT:
            self.flush()

    def _start(self) -> None:
        """Start this process's flusher (once: the first held item in a process)."""
        with self._start_lock:
            pid = current_pid()
            if self._pid == pid:
                return
            # Made here, in the process (and, under gevent, after its patching) that waits on
            # it; set by an item to an idle flusher, a new interval, or the holder dropped
            # (its flusher ends).
            self._wake = wake = threading.Event()
            self._awake = False
            weakref.finalize(self, wake.set).atexit = False
            self._pid = pid
            flusher = threading.Thread(
                target=_flush_every,
                args=(weakref.ref(self), wake, pid),
                name=FLUSHER_NAME,
                daemon=True,
            )
            flusher.start()


def _flush_every(ref: weakref.ref[Held[T]], wake: threading.Event, pid: int) -> None:
    """Flush ``ref``'s items every ``seconds`` while it holds any, sleeping until one comes
    otherwise; until it is gone (an app dropped). The holder is not kept alive across a
    wait."""
    while True:
        wake.wait()
        wake.clear()
        holder = ref()
        while holder is not None and holder._pid == pid:
            # Cut short by a new interval (Held.hold_for) or the holder dropped: a flusher
            # asleep for an old minute held a new 0.1 s interval's items that long. Cleared
            # before the interval is read, so a new one given after the read is not missed.
            wake.clear()
            seconds = holder.seconds
            del holder
            wake.wait(seconds)
            holder = ref()
            if holder is None or holder._pid != pid:
                break
            if holder.flush():
                continue
            holder._awake = False  # then the queue looked at once more (see Held._hold)
            if not holder._held:
                break
            holder._awake = True
        if holder is None or holder._pid != pid:
            return
        del holder


def _flush_all() -> None:
    """At exit: write what every holder of this process still holds."""
    pid = current_pid()
    for holder in list(_ALL):
        if holder._pid == pid:  # its flusher runs in this process (it held items here)
            holder.flush()


def _forked_child() -> None:
    """In a forked child: no holder holds its parent's items (the parent writes them; a
    child's flush, a log line, a scrape before its first item wrote them twice), and each
    gets new locks."""
    for holder in list(_ALL):
        holder._held.clear()
        if holder._own_lock:
            holder._lock = threading.RLock()
        holder._start_lock = threading.Lock()


atexit.register(_flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked_child)
