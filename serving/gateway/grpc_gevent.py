"""gRPC under the gevent worker: grpcio's gevent mode with a cheaper wait per call (issue 9).

grpcio's own gevent support (``grpc.experimental.gevent.init_gevent``, "gevent compatibility"
in its docs) is what lets a blocking call yield to the hub: it waits for each call's
completion-queue event in a native thread of ``gevent.get_hub().threadpool``
(``cygrpc._latent_event``). Without it a call blocks the whole worker. That thread pool is
general-purpose and costs, per call, a pool semaphore, a pure-Python queue and condition
(``gevent._threading``), a new async watcher and an ``AsyncResult``: in a py-spy profile of a
gevent worker answering qa at 8 clients, ~17% of the samples. It also holds at most 10
threads, one of them taken for good by grpcio's callback loop, so at most 9 calls of a
worker wait at once and the rest queue in the gateway.

:class:`CallPool` does the same job with less: one parked native thread per call in flight,
woken through its own eventfd, and one eventfd the hub watches for the whole pool. Both are
written by ``os.eventfd_write``, which lets go of the GIL before it writes, so the thread woken
(the call's, or the hub) takes the GIL at once instead of waiting for its waker to let go of it:
each such wait is a round of ``futex`` calls and context switches (``strace -f``).
:func:`init_grpc_gevent` turns grpcio's gevent mode on (before any channel exists) and, unless
asked not to, hands its waits to a :class:`CallPool` by setting grpcio's module global
``g_gevent_threadpool`` (the object ``init_gevent`` set to the hub's pool; grpcio only calls
its ``apply``).
``GATEWAY_GRPC_CALL_POOL=hub`` keeps the hub's thread pool.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
from collections.abc import Callable
from typing import Any

LOGGER = logging.getLogger("serving.gateway.grpc_gevent")
MAX_THREADS = 256  # calls of one worker waiting at once (gevent's hub pool: 10)


class _Parked:
    """One native thread, the call it runs next, and how it is woken for it.

    ``wake`` and ``wait`` write and read an eventfd of the thread's own (``os.eventfd_write``
    and ``os.eventfd_read`` let go of the GIL before they block or wake anyone); without a
    descriptor left for it (``EMFILE`` under a low ``ulimit -n``) a lock's ``release`` and
    ``acquire`` do the same job at the cost of the GIL hand-off (:meth:`CallPool.apply`), so
    the call still runs.
    """

    __slots__ = ("fd", "task", "wait", "wake")

    def __init__(self, allocate_lock: Callable[[], Any]) -> None:
        self.task: tuple[Callable[..., Any], tuple[Any, ...], Any] | None = None
        try:
            self.fd: int | None = os.eventfd(0, os.EFD_CLOEXEC)
        except OSError:
            self.fd = None
            lock = allocate_lock()
            lock.acquire()
            self.wake: Callable[[], Any] = lock.release
            self.wait: Callable[[], Any] = lock.acquire
        else:
            self.wake = functools.partial(os.eventfd_write, self.fd, 1)
            self.wait = functools.partial(os.eventfd_read, self.fd)


class CallPool:
    """``apply(func, args)`` runs ``func`` in a native thread while the calling greenlet waits.

    Only what grpcio's gevent mode needs of a pool (``apply``). A result reaches its greenlet
    through one shared eventfd; a greenlet killed while it waits (gunicorn's graceful
    timeout) leaves its thread to finish the call, whose deadline bounds it, and the result
    is dropped. Raises whatever ``func`` raises, in the calling greenlet.
    """

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        from gevent import get_hub
        from gevent.hub import Waiter
        from gevent.lock import Semaphore
        from gevent.monkey import get_original

        self._waiter: Callable[[Any], Any] = Waiter  # imported here: gevent only in this mode
        self._hub = get_hub()
        start, lock = get_original("_thread", ["start_new_thread", "allocate_lock"])
        self._start_thread: Callable[..., Any] = start
        self._allocate_lock: Callable[[], Any] = lock
        self._slots = Semaphore(max_threads)
        self._idle: list[_Parked] = []
        self._done: collections.deque[tuple[Any, bool, Any]] = collections.deque()
        self._in_flight = 0
        self._signal = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._wake = self._hub.loop.io(self._signal, 1)
        self._wake.start(self._deliver)
        self._wake.ref = False  # only calls in flight keep the loop alive
        self.threads = 0

    def apply(self, func: Callable[..., Any], args: tuple[Any, ...] = ()) -> Any:
        """Run ``func(*args)`` in a native thread; the calling greenlet waits for its result."""
        self._slots.acquire()
        try:
            parked = self._idle.pop() if self._idle else self._new_thread()
        except BaseException:  # no thread to run it: the slot was never used
            self._slots.release()
            raise
        waiter = self._waiter(self._hub)
        parked.task = (func, args, waiter)
        self._in_flight += 1
        if self._in_flight == 1:
            self._wake.ref = True
        # os.eventfd_write lets go of the GIL before it wakes the thread, which needs the GIL
        # at once to start the call: a lock's release() wakes it while this thread still holds
        # the GIL, and the woken thread then waits on the GIL (strace -f: four futex calls and
        # two context switches more per call on a worker pinned to one CPU).
        parked.wake()
        return waiter.get()

    def _new_thread(self) -> _Parked:
        parked = _Parked(self._allocate_lock)
        try:
            self._start_thread(self._run, (parked,))
        except BaseException:  # no thread (RuntimeError): its eventfd would leak per call
            if parked.fd is not None:
                os.close(parked.fd)
            raise
        self.threads += 1
        return parked

    def _run(self, parked: _Parked) -> None:
        # Native thread: no gevent calls here.
        while True:
            parked.wait()  # blocks without the GIL until apply() wakes it
            task, parked.task = parked.task, None
            if task is None:
                return
            func, args, waiter = task
            try:
                outcome = (waiter, True, func(*args))
            except BaseException as error:  # delivered to the waiting greenlet
                outcome = (waiter, False, error)
            self._done.append(outcome)
            self._idle.append(parked)
            # os.eventfd_write lets go of the GIL before it writes: the hub, woken, takes the
            # GIL at once instead of waiting for this thread to park (gevent's async send
            # writes holding it: three futex calls and a wake-up more per call).
            os.eventfd_write(self._signal, 1)

    def _deliver(self) -> None:
        # In the hub: hand each finished call's result to its greenlet.
        # try/except, not contextlib.suppress: two Python calls less on every answer.
        try:  # noqa: SIM105
            os.eventfd_read(self._signal)
        except BlockingIOError:
            pass  # read with an earlier signal's results
        while self._done:
            waiter, ok, value = self._done.popleft()
            self._in_flight -= 1
            if self._in_flight == 0:
                self._wake.ref = False
            self._slots.release()
            if ok:
                waiter.switch(value)
            else:
                waiter.throw(value)


def init_grpc_gevent(call_pool: bool = True) -> CallPool | None:
    """Turn on grpcio's gevent mode in this process (before any channel is made).

    ``call_pool``: hand grpcio's per-call waits to a :class:`CallPool` instead of the hub's
    thread pool. Returns the pool, or None (the hub's pool kept, or grpcio has no such
    global any more: then a warning is logged and grpcio's own behaviour stays).
    """
    from grpc._cython import cygrpc
    from grpc.experimental import gevent as grpc_gevent

    grpc_gevent.init_gevent()
    if not call_pool:
        return None
    if getattr(cygrpc, "g_gevent_threadpool", None) is None:
        LOGGER.warning("grpcio has no g_gevent_threadpool: keeping gevent's hub thread pool")
        return None
    pool = CallPool()
    cygrpc.g_gevent_threadpool = pool
    return pool
