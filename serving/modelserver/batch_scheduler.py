"""The batch threads shared by every model version's batching queue (TF Serving's
``SharedBatchScheduler``): at most ``num_batch_threads`` batches run at once, a free thread
taking the ready batch whose oldest request has waited longest.

The queues themselves (:class:`serving.modelserver.batching.Batcher`) live in
:mod:`serving.modelserver.batching`, which makes or is given one scheduler.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from serving.modelserver.batching import Batcher, _Task


class BatchScheduler:
    """``num_batch_threads`` threads shared by the batching queues of every model version.

    As TF Serving's batching: its SavedModel factory owns one ``SharedBatchScheduler``, "the
    'config.num_batch_threads' threads are shared across all session instances created by this
    factory. However, each session has its own dedicated queue"
    (``tensorflow_serving/servables/tensorflow/saved_model_bundle_factory.h``). So at most that
    many TF calls run at once whatever the number of models: on a busy server requests wait
    in their own model's queue and leave in larger batches instead of competing for the
    cores. A free thread takes the ready batch whose oldest request has waited longest.

    The limit is on batches running, not on these threads: a request that arrives to an
    empty queue, ready at once (``batch_timeout_micros`` 0, or a full batch) while fewer
    than ``num_threads`` batches run and no other queue has a ready batch, runs its batch
    in its own thread (:meth:`claim`), which is what a woken batch thread would have done
    with it, without the two thread handoffs (about 0.1 ms of CPU per request here).
    """

    def __init__(self, num_threads: int) -> None:
        self.condition = threading.Condition()
        self._queues: list[Batcher] = []
        self._closed = False
        self.flushing = False
        self._limit = max(1, num_threads)
        self._threads = [
            threading.Thread(target=self._work, name=f"batcher-{index}", daemon=True)
            for index in range(max(1, num_threads))
        ]
        for thread in self._threads:
            thread.start()

    @property
    def draining(self) -> bool:
        """Closing or flushing: every queued batch may leave at once (caller holds the lock)."""
        return self._closed or self.flushing

    def _busy(self) -> int:
        """Batches running, in these threads or claimed (caller holds the lock)."""
        return sum(queue.running for queue in self._queues)

    def add(self, queue: Batcher) -> None:
        """Serve a new queue."""
        with self.condition:
            self._queues.append(queue)

    def remove(self, queue: Batcher) -> None:
        """Stop looking at a (drained) queue."""
        with self.condition:
            if queue in self._queues:
                self._queues.remove(queue)

    def flush(self) -> None:
        """From now on a queued batch leaves at once instead of waiting out its
        ``batch_timeout_micros`` (shutdown: queued requests must be answered within the
        gRPC grace period, however long the timeout); new requests are still taken."""
        with self.condition:
            self.flushing = True
            self.condition.notify_all()

    def close(self) -> None:
        """Finish every queued request, then stop and join the threads."""
        with self.condition:
            self._closed = True
            self.condition.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            with self.condition:
                picked = self._wait_for_batch()
                if picked is None:
                    return
            queue, tasks = picked
            try:
                queue.execute(tasks)
            finally:
                self.release(queue)

    def claim(self, queue: Batcher, head: _Task) -> bool:
        """Under the lock: take a batch slot for ``queue``'s batch led by ``head`` (the only
        queued request), to run it in the caller's thread, if a free batch thread would take
        that batch now: it is ready, a slot is free and no other queue has a ready batch
        (which waited longer). The caller runs the batch, then calls :meth:`release`."""
        if self._busy() >= self._limit:
            return False
        now = time.monotonic()
        if queue.ready_at(head) > now:
            return False
        if any(other is not queue and other.ready_by(now) for other in self._queues):
            return False
        queue.running += 1
        return True

    def release(self, queue: Batcher) -> None:
        """A batch of ``queue`` has finished: free its slot and wake the threads."""
        with self.condition:
            queue.running -= 1
            # Wake the batch threads (and a closing queue's waiter) only if there is work or
            # a waiter: at low load every batch runs alone and nothing is queued.
            if self._closed or queue.closed or any(q.head() for q in self._queues):
                self.condition.notify_all()

    def _wait_for_batch(self) -> tuple[Batcher, list[_Task]] | None:
        """Under the lock: the oldest ready batch, waiting for one; None once closed and idle."""
        while True:
            now = time.monotonic()
            best: tuple[float, Batcher] | None = None
            wait: float | None = None
            pending = False
            for queue in self._queues:
                head = queue.head()
                if head is None:
                    continue
                pending = True
                ready_at = queue.ready_at(head)
                if ready_at <= now:
                    if best is None or head.enqueued_at < best[0]:
                        best = (head.enqueued_at, queue)
                else:
                    wait = ready_at - now if wait is None else min(wait, ready_at - now)
            if best is not None and self._busy() < self._limit:
                queue = best[1]
                queue.running += 1
                return queue, queue.take()
            if self._closed and not pending:
                return None
            # All slots busy (batches claimed by request threads): a release notifies.
            self.condition.wait(wait if best is None else None)
