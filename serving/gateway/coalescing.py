"""Request coalescing: concurrent requests to one model version share one backend call (issue 9).

Each backend call costs the gateway worker about as much CPU as the rest of a small request
(gRPC's call set-up and its thread hand-offs; ``loadtests/README.md``, round 8), and costs
the model server one more Predict to handle. So, per worker process and model version, at
most ``coalesce_in_flight`` calls are in flight; a request that arrives while they are
waits in a queue, and when a call returns, the first waiting request takes the queue (whole
requests, up to ``coalesce_max_rows`` rows) and sends it as one call: the inputs
concatenated along axis 0 and right-padded with the spec's ``pad_id``, the outputs sliced
back per request (:mod:`serving.tensor_batches`, the model server's own batching code).
Nothing waits for a batch to fill: a lone request goes out at once, as before; merged calls
appear only under load, where they lower the CPU per request on both sides and the queueing
behind the model server.

A call holds requests back for at most ``coalesce_max_hold_ms`` after it started (the bound
TF Serving's ``batch_timeout_micros`` puts on a request's wait for others): then the requests
queued behind it go out together without waiting for it. So a request waits for a batch at
most that long, a slow or hung call does not stall the others until its deadline, and a model
whose calls are long (a transformer's, compute-bound) keeps the model server fed with calls
instead of waiting for each to come back.

Answers are those of unmerged calls: padding is part of the serving contract (every input is
a matrix of token ids right-padded with ``pad_id``, which models mask), as the model server's
``pad_variable_length_inputs`` batching relies on; a batch of another shape runs the kernels
in another order, so a score may move by a float32 ulp, as with any batching.

Failures: a retryable UNAVAILABLE (the server is down), DEADLINE_EXCEEDED and NOT_FOUND (the
version went away) are every member's answer (each raises its own copy); any other failure of
a merged call (INVALID_ARGUMENT, INTERNAL: possibly one member's doing; RESOURCE_EXHAUSTED,
an UNAVAILABLE that is not retryable, a message past its size limit (TOO_LARGE): possibly the
merged call's size), or an answer without
one row per input row, makes each member call again alone, so one request's fault never
fails another's. Each call has the configured deadline; a merged call forwards its
members' request ids (comma-separated ``x-request-id``, cut to fit gRPC's metadata limit:
``serving.gateway.exchange.forwarded_ids``).
"""

from __future__ import annotations

import logging
import math
import threading
import time

from serving.contract import SIGNATURE_NAME
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.backends.base import Arrays
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.exchange import forwarded_ids
from serving.gateway.lanes import Lane, QueuedRequest
from serving.gateway.metrics import GatewayMetrics
from serving.tensor_batches import merge_inputs, rows_of, split_outputs

LOGGER = logging.getLogger("serving.gateway.coalescing")
# Failures that would be every member's alone too: no point calling again one by one.
SHARED_FAILURES = frozenset(
    {BackendFailure.UNAVAILABLE, BackendFailure.DEADLINE_EXCEEDED, BackendFailure.NOT_FOUND}
)


def _own_copy(error: BackendError) -> BackendError:
    """A member's copy of a merged call's error, with the call's cause: one object raised in
    several requests would collect all their frames in one traceback."""
    copy = BackendError(error.failure, error.message, error.retryable, error.limit)
    copy.__cause__ = error.__cause__
    return copy


def shared(error: BackendError) -> bool:
    """Whether a merged call's failure is every member's answer (:data:`SHARED_FAILURES`).

    An UNAVAILABLE that is not retryable is gRPC's RESOURCE_EXHAUSTED or HTTP 429 (the
    backends map both to UNAVAILABLE): a message over the size limit or a tensor the server
    could not allocate, which may be the merged call's size, not any member's own."""
    if error.failure is BackendFailure.UNAVAILABLE:
        return error.retryable
    return error.failure in SHARED_FAILURES


class Coalescer:
    """Merges concurrent requests to one model version into one backend call.

    ``max_rows``: most rows one call carries (<= 1: every request calls alone);
    ``max_in_flight``: calls per model version in flight before requests queue;
    ``max_hold_seconds``: how long after its start a call holds requests back. Thread- and
    greenlet-safe (``threading`` primitives, which gevent's worker patches).
    """

    def __init__(
        self,
        backend: Backend,
        metrics: GatewayMetrics,
        max_rows: int,
        max_in_flight: int,
        max_hold_seconds: float,
    ) -> None:
        self._max_hold = max_hold_seconds
        self._backend = backend
        self._metrics = metrics
        self._max_rows = max_rows
        self._max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self._lanes: dict[tuple[str, int], Lane] = {}

    def predict(
        self,
        model: str,
        version: int,
        pad_id: int,
        inputs: Arrays,
        request_id: str,
        signature_name: str = SIGNATURE_NAME,
    ) -> Arrays:
        """The outputs of ``inputs`` (int32 ``[rows, length]`` each) on ``model`` ``version``:
        float arrays with ``rows`` rows each, from a call of their own or a merged one.

        ``signature_name``: the version's signature (its spec's). Raises BackendError as the
        backend's ``predict`` does.
        """
        selector = VersionSelector(version=version, signature_name=signature_name)
        rows = rows_of(inputs)
        if rows >= self._max_rows:  # too big to share a call (or merging is off)
            return self._call(model, selector, inputs, request_id, 1)
        with self._lock:
            lane = self._lanes.get((model, version))
            if lane is None:
                lane = self._lanes[(model, version)] = Lane()
            now = time.monotonic()
            busy_until = (
                None
                if len(lane.started) < self._max_in_flight  # the common case: no wait
                else lane.busy_until(now, self._max_in_flight, self._max_hold)
            )
            if busy_until is None:
                lane.started.append(now)
            else:
                me = QueuedRequest(inputs, rows, request_id, threading.Event())
                lane.queue.append(me)
        if busy_until is None:  # a call of its own: nothing to merge or share
            try:
                return self._call(model, selector, inputs, request_id, 1)
            finally:
                self._hand_on(lane, now)
        batch = self._wait(lane, me, busy_until)
        if batch is not None:
            self._send(model, selector, pad_id, lane, batch)
        if me.error is not None:
            raise me.error
        if me.outputs is None:  # the merged call failed for another reason: call alone
            return self._call(model, selector, inputs, request_id, 1)
        return me.outputs

    def queued(self, model: str, version: int) -> int:
        """Requests to ``model`` ``version`` waiting for the next call in this process."""
        with self._lock:
            lane = self._lanes.get((model, version))
            return len(lane.queue) if lane is not None else 0

    def _wait(self, lane: Lane, me: QueuedRequest, busy_until: float) -> list[QueuedRequest] | None:
        """Wait in the queue until a call ends (its sender hands over: ``me.batch`` to send,
        or ``me`` answered) or the calls ahead stop holding it (then ``me`` sends the queue).

        A wait that raises (gevent kills a greenlet: gunicorn's graceful timeout, a
        ``gevent.Timeout``) leaves the lane as if ``me`` had never queued (:meth:`_abandon`).
        """
        try:
            return self._wait_turn(lane, me, busy_until)
        except BaseException:
            self._abandon(lane, me)
            raise

    def _abandon(self, lane: Lane, me: QueuedRequest) -> None:
        """``me`` stops waiting: out of the queue; if it was handed a call to send, that call
        is off (the queue left behind it goes on at once) and the others it carried each
        call alone, so none of them waits for a sender that is gone."""
        with self._lock:
            if me in lane.queue:
                lane.queue.remove(me)
                return
            batch, me.batch = me.batch, None
        if batch is None:  # a member of a call another request sends
            return
        self._hand_on(lane, me.started)
        for item in batch[1:]:  # neither outputs nor error: each calls alone
            item.done.set()

    def _wait_turn(
        self, lane: Lane, me: QueuedRequest, busy_until: float
    ) -> list[QueuedRequest] | None:
        while True:
            timeout = None if busy_until == math.inf else max(0.0, busy_until - time.monotonic())
            if me.done.wait(timeout):
                return me.batch
            with self._lock:
                if me not in lane.queue:  # taken by a call that ended meanwhile: done soon
                    busy_until = math.inf
                    continue
                now = time.monotonic()
                found = lane.busy_until(now, self._max_in_flight, self._max_hold)
                if found is not None:
                    busy_until = found
                    continue
                me.started = now
                lane.started.append(now)
                return lane.take(self._max_rows, first=me)

    def _send(
        self,
        model: str,
        selector: VersionSelector,
        pad_id: int,
        lane: Lane,
        batch: list[QueuedRequest],
    ) -> None:
        """Run one call for ``batch`` (its sender first), then hand the queue on."""
        try:
            self._run(model, selector, pad_id, batch)
        finally:
            self._hand_on(lane, batch[0].started)
            for item in batch[1:]:
                item.done.set()

    def _hand_on(self, lane: Lane, started: float) -> None:
        """The call that started at ``started`` is over: the next queued requests, if any,
        go out in the next call, sent by the first of them."""
        with self._lock:
            now = time.monotonic()
            lane.ended(started)
            following = lane.take(self._max_rows)
            if following:  # its sender's batch set under the lock: see _abandon
                following[0].started, following[0].batch = now, following
                lane.started.append(now)
        if following:
            following[0].done.set()

    def _run(
        self, model: str, selector: VersionSelector, pad_id: int, batch: list[QueuedRequest]
    ) -> None:
        """Each member's outputs, or its error, or neither (then it calls again alone)."""
        try:
            if len(batch) == 1:
                batch[0].outputs = self._call(
                    model, selector, batch[0].inputs, batch[0].request_id, 1
                )
                return
            parts = self._merged_call(model, selector, pad_id, batch)
            for item, part in zip(batch, parts, strict=True):
                item.outputs = part
        except BackendError as error:
            if len(batch) == 1 or shared(error):
                batch[0].error = error
                for item in batch[1:]:  # each raises its own: tracebacks are not shared
                    item.error = _own_copy(error)
            else:
                LOGGER.warning("a merged call of %d requests failed (%s)", len(batch), error)
        except Exception as error:
            if len(batch) == 1:
                raise
            LOGGER.warning("a merged call of %d requests failed: %r", len(batch), error)

    def _merged_call(
        self, model: str, selector: VersionSelector, pad_id: int, batch: list[QueuedRequest]
    ) -> list[Arrays]:
        """One call for the batch's requests; each one's outputs, in order.

        Raises BackendError as ``predict``; ValueError for outputs without one row per input
        row (slices could be other members' rows: alone, each member's heads judge them).
        """
        merged = merge_inputs([item.inputs for item in batch], pad=True, pad_value=pad_id)
        ids = forwarded_ids([item.request_id for item in batch])  # fits gRPC's metadata
        outputs = self._call(model, selector, merged, ids, len(batch))
        counts = [item.rows for item in batch]
        if any(value.shape[:1] != (sum(counts),) for value in outputs.values()):
            raise ValueError(f"outputs without {sum(counts)} rows")
        return split_outputs(outputs, counts)

    def _call(
        self, model: str, selector: VersionSelector, inputs: Arrays, request_ids: str, requests: int
    ) -> Arrays:
        self._metrics.observe_batch(model, rows_of(inputs), requests)
        return self._backend.predict(model, selector, inputs, request_ids)
