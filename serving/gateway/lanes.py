"""Per model version, the calls in flight and the requests queued behind them: the state
:class:`serving.gateway.coalescing.Coalescer` keeps for each (model, version) of a worker.

Every method is called with the coalescer's lock held.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from serving.gateway.backends.base import Arrays
from serving.gateway.errors import BackendError


@dataclass(eq=False)  # compared by identity: inputs are numpy arrays
class QueuedRequest:
    """One request's tensors and, once a call has run, its outputs or error."""

    inputs: Arrays
    rows: int
    request_id: str
    done: threading.Event  # set when its call is over or it is to send the next one
    outputs: Arrays | None = None
    error: BackendError | None = None
    batch: list[QueuedRequest] | None = None  # set when this request is to send the next call
    started: float = 0.0  # when the call it sends started (time.monotonic)


@dataclass(eq=False)
class Lane:
    """One model version's calls in flight and queue, in this process (the coalescer's lock
    held by every caller)."""

    queue: deque[QueuedRequest] = field(default_factory=deque)
    started: list[float] = field(default_factory=list)  # the calls in flight

    def busy_until(self, now: float, max_in_flight: int, max_hold: float) -> float | None:
        """None when a call may start now; else when the oldest call holding requests back
        stops holding them (time.monotonic)."""
        holding = [start for start in self.started if now - start < max_hold]
        return None if len(holding) < max_in_flight else min(holding) + max_hold

    def take(self, max_rows: int, first: QueuedRequest | None = None) -> list[QueuedRequest]:
        """The requests the next call carries: ``first`` (taken out of the queue) then the
        queue's oldest, whole requests up to ``max_rows`` rows."""
        taken: list[QueuedRequest] = []
        rows = 0
        if first is not None:
            self.queue.remove(first)
            taken, rows = [first], first.rows
        while self.queue and (not taken or rows + self.queue[0].rows <= max_rows):
            item = self.queue.popleft()
            rows += item.rows
            taken.append(item)
        return taken

    def ended(self, started: float) -> None:
        """A call that started at ``started`` returned."""
        self.started.remove(started)
