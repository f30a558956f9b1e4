"""Server-side batching: merge concurrent requests to one model version into one TF call.

Like TF Serving's batching session: a queue per model version, ``num_batch_threads`` worker
threads shared by all queues (:class:`serving.modelserver.batch_scheduler.BatchScheduler`)
that wait up to ``batch_timeout_micros`` for up to ``max_batch_size`` rows, right-padding of
variable length inputs with the pad id (0) and slicing of the outputs back to each request.

Padding is safe for this project's models because every model masks or ignores token id 0
(``serving.contract.PAD_ID``): a row padded with zeros gives the same outputs as unpadded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from serving.modelserver.batch_scheduler import BatchScheduler
from serving.modelserver.config import BatchingSettings
from serving.modelserver.errors import (
    deadline_exceeded,
    invalid_argument,
    unavailable,
)
from serving.modelserver.packing import SplitRunner, batched
from serving.tensor_batches import Tensors, merge_inputs, rows_of, split_outputs

Runner = Callable[[str, Tensors], Tensors]


@dataclass(eq=False)  # tasks are compared by identity: their inputs are numpy arrays
class _Task:
    signature: str
    inputs: Tensors
    key: Hashable
    rows: int
    deadline: float | None = None  # time.monotonic(); None: the client set none
    enqueued_at: float = field(default_factory=time.monotonic)
    future: Future[Tensors] = field(default_factory=Future)


class Batcher:
    """The batching queue of one model version, served by a :class:`BatchScheduler`'s threads.

    Without a ``scheduler`` it makes its own with ``settings.num_batch_threads`` threads (and
    closes it on :meth:`close`); the model server passes one scheduler to every version.
    With ``settings.split_by_length`` and padding on, a batch of a signature for which
    ``splittable`` is true runs as the calls of :func:`serving.modelserver.packing.run_split`.
    """

    def __init__(
        self,
        runner: Runner,
        settings: BatchingSettings,
        observe_batch: Callable[[int], None] | None = None,
        observe_depth: Callable[[int], None] | None = None,
        scheduler: BatchScheduler | None = None,
        splittable: Callable[[str], bool] | None = None,
        observe_split: Callable[[int, float], None] | None = None,
    ) -> None:
        self._runner = runner
        self._settings = settings
        self._run: Runner = runner
        if settings.split_by_length and settings.pad_variable_length_inputs and splittable:
            self._run = SplitRunner(runner, splittable, observe_split)
        self._observe_batch = observe_batch or (lambda size: None)
        self._observe_depth = observe_depth or (lambda depth: None)
        self._pending: list[_Task] = []
        self._pending_rows = 0
        self._closed = False
        self.running = 0  # batches taken and not finished (guarded by the scheduler's lock)
        self._own_scheduler = scheduler is None
        self._scheduler = scheduler or BatchScheduler(settings.num_batch_threads)
        self._condition = self._scheduler.condition
        self._scheduler.add(self)

    def submit(self, signature: str, inputs: Tensors, deadline: float | None = None) -> Tensors:
        """Run a request as part of a batch and return its own slice of the outputs.

        ``deadline`` (``time.monotonic()``) stops a request larger than ``max_batch_size``
        between two of its batches (DEADLINE_EXCEEDED)."""
        key = self._batch_key(signature, inputs)
        task = _Task(signature, inputs, key, rows_of(inputs), deadline)
        capacity = self._settings.max_batch_size * self._settings.max_enqueued_batches
        if task.rows > capacity:
            # Admitted only into an empty queue, it was 'queue is full' (UNAVAILABLE, retried)
            # whenever another request waited: under load never answered. Refused whatever
            # the load, as TF Serving's input batch size limit (INVALID_ARGUMENT).
            raise invalid_argument(
                f"Task size {task.rows} rows is larger than the batching queue holds: "
                f"{capacity} rows (max_batch_size {self._settings.max_batch_size} x "
                f"max_enqueued_batches {self._settings.max_enqueued_batches})"
            )
        with self._condition:
            if self._closed:
                # A request that raced with an unload still gets its answer, unbatched.
                return self._runner(signature, inputs)
            if self._pending_rows + task.rows > capacity and self._pending:
                raise unavailable(
                    "The batch scheduling queue to which this task was submitted is full"
                )
            self._pending.append(task)
            self._pending_rows += task.rows
            self._observe_depth(self._pending_rows)
            claimed = self._pending[0] is task and self._scheduler.claim(self, task)
            if claimed:
                tasks = self.take()
            else:
                self._condition.notify_all()  # any scheduler thread may take it
        if claimed:
            try:
                self.execute(tasks)
            finally:
                self._scheduler.release(self)
        return task.future.result()

    def pending_rows(self) -> int:
        """Rows waiting for a worker (the queue depth)."""
        with self._condition:
            return self._pending_rows

    def close(self) -> None:
        """Stop accepting work and wait until what is queued has been answered."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()
            while self._pending or self.running:
                self._condition.wait()
        self._scheduler.remove(self)
        if self._own_scheduler:
            self._scheduler.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has begun (caller holds the lock)."""
        return self._closed

    def head(self) -> _Task | None:
        """The oldest queued request (caller holds the scheduler's lock)."""
        return self._pending[0] if self._pending else None

    def ready_at(self, head: _Task) -> float:
        """When (``time.monotonic()``) the batch led by ``head`` may leave: 0 (at once) if full,
        closing or the scheduler is draining, else ``batch_timeout_micros`` after ``head``
        arrived. Caller holds the lock."""
        if (
            self._closed
            or self._scheduler.draining
            or self._rows_for(head.key) >= self._settings.max_batch_size
        ):
            return 0.0
        return head.enqueued_at + self._settings.batch_timeout_micros / 1e6

    def ready_by(self, now: float) -> bool:
        """Whether a batch may leave by ``now`` (caller holds the lock)."""
        head = self.head()
        return head is not None and self.ready_at(head) <= now

    def take(self) -> list[_Task]:
        """Remove the head's batch from the queue (caller holds the lock)."""
        return self._take(self._pending[0].key, self._settings.max_batch_size)

    def _batch_key(self, signature: str, inputs: Tensors) -> Hashable:
        if self._settings.pad_variable_length_inputs:
            return (signature, tuple(sorted((key, value.ndim) for key, value in inputs.items())))
        # Without padding only requests with equal shapes (past axis 0) can share a batch.
        return (signature, tuple(sorted((key, value.shape[1:]) for key, value in inputs.items())))

    def _rows_for(self, key: Hashable) -> int:
        return sum(task.rows for task in self._pending if task.key == key)

    def _take(self, key: Hashable, limit: int) -> list[_Task]:
        taken: list[_Task] = []
        rows = 0
        for task in list(self._pending):
            if task.key != key or (taken and rows + task.rows > limit):
                continue
            taken.append(task)
            rows += task.rows
            self._pending.remove(task)
        self._pending_rows -= rows
        self._observe_depth(self._pending_rows)
        return taken

    def execute(self, tasks: list[_Task]) -> None:
        """Merge, run and answer one batch (outside the lock)."""
        try:
            if len(tasks) == 1:  # a batch of one: its own tensors, no merge or slice copies
                tasks[0].future.set_result(self._run_alone(tasks[0]))
                return
            merged = merge_inputs(
                [task.inputs for task in tasks], self._settings.pad_variable_length_inputs
            )
            outputs = self._batch(tasks[0].signature, merged)
            for task, part in zip(
                tasks, split_outputs(outputs, [t.rows for t in tasks]), strict=True
            ):
                task.future.set_result(part)
        except BaseException as error:  # every waiting request must hear about the failure
            for task in tasks:
                if not task.future.done():
                    task.future.set_exception(error)

    def _run_alone(self, task: _Task) -> Tensors:
        """One request's outputs, run in calls of at most ``max_batch_size`` rows.

        A request larger than ``max_batch_size`` runs as TF Serving's batching runs it with
        ``enable_large_batch_splitting`` (its ``BatchingParameters``): split into batches of
        the limit, outputs concatenated in row order. Run whole, a few-byte gRPC request
        declaring 4,096 rows of 256 ids (a fill) took 18 GB and 30 s of CPU in one TF call;
        refusing it, as TF Serving does without splitting, would refuse the gateway's own
        requests of up to 64 similarity pairs. Memory is one batch's, CPU the rows' own.
        """
        limit = max(self._settings.max_batch_size, 1)
        if task.rows <= limit:
            self._observe_batch(task.rows)
            return self._run(task.signature, task.inputs)
        parts: list[Tensors] = []
        for start in range(0, task.rows, limit):
            if start and task.deadline is not None and time.monotonic() >= task.deadline:
                # The client has gone: its remaining batches would be CPU for no one.
                raise deadline_exceeded(
                    f"Deadline exceeded after {start} of the request's {task.rows} rows"
                )
            chunk = {key: value[start : start + limit] for key, value in task.inputs.items()}
            parts.append(self._batch(task.signature, chunk))
        # The chunks are slices of one rectangular request, so every output keeps its shape
        # past axis 0 from chunk to chunk.
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def _batch(self, signature: str, inputs: Tensors) -> Tensors:
        """Run one batch of several requests' rows or of a split request's (observed), whose
        every output must have a row per input row (:func:`packing.batched`)."""
        rows = rows_of(inputs)
        self._observe_batch(rows)
        return batched(self._run(signature, inputs), rows)
