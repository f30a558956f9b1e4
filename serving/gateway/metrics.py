"""Prometheus metrics in a registry per app (multiprocess-aware under gunicorn)."""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)

from serving.gateway.errors import GatewayError
from serving.gateway.holding import Held
from serving.gateway.metrics_files import ReadableFilesCollector, ReservedMmapedDict, folder_lock
from serving.gateway.pid import current_pid

LOGGER = logging.getLogger("serving.gateway.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The value class this module swapped in, once per process (see use_folder_values).
_FOLDER_VALUES: list[type] = []


def use_folder_values() -> None:
    """With ``PROMETHEUS_MULTIPROC_DIR`` set, make prometheus-client write every value to the
    folder's files; called before the gateway creates any metric (``GatewayMetrics``).

    Decided here, in the worker, from the variable: prometheus-client chooses its value
    class when it is first imported, which is in gunicorn's master (the worker class and
    ``gunicorn_conf`` import it) before the master sets a folder of its own
    (``gunicorn_conf.own_metrics_folder``); the workers inherit that choice.
    """
    if _FOLDER_VALUES or not os.environ.get(MULTIPROC_ENV):
        return
    # Multiprocess values check the process id on every write (a forked child must write its
    # own files): read from memory, not by a system call per write (11 per request). One
    # value class for the process, so one mmap per file.
    value_class = values.MultiProcessValue(process_identifier=current_pid)  # type: ignore[no-untyped-call]
    _FOLDER_VALUES.append(value_class)
    values.ValueClass = value_class
    # Its files' disk blocks reserved before they are written: a full disk is an OSError,
    # not a SIGBUS that kills the worker (serving.gateway.metrics_files.ReservedMmapedDict).
    values.MmapedDict = ReservedMmapedDict  # type: ignore[attr-defined]


class GatewayMetrics:
    """Request counts and latencies per endpoint/model/version/status, and stage timings."""

    def __init__(self, flush_seconds: float = 0.0) -> None:
        """``flush_seconds``: how long values may be held before they are written (0: at
        once; ``GatewaySettings.metrics_flush_seconds``)."""
        use_folder_values()
        self.registry = CollectorRegistry()
        request_labels = ("endpoint", "model", "version", "status")
        self.requests = Counter(
            "gateway_requests",
            "Requests answered by the gateway.",
            request_labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request to response.",
            request_labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stages = Histogram(
            "gateway_stage_duration_seconds",
            "Time spent per stage: tokenise, backend, postprocess.",
            ("stage", "model"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "gateway_batch_size",
            "Examples sent to the model in one backend call.",
            ("model",),
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.merged_requests = Counter(
            "gateway_merged_requests",
            "Requests answered by a backend call they shared with others (request coalescing).",
            ("model",),
            registry=self.registry,
        )
        # labels() takes a lock and rebuilds the label tuple on every call: each child is
        # looked up once and kept (a dict read is all a request pays; dicts are thread-safe
        # for this: two threads racing store the same child).
        self._request_children: dict[tuple[str, str, str, int], tuple[Counter, Histogram]] = {}
        self._stage_children: dict[tuple[str, str], Histogram] = {}
        self._batch_children: dict[str, Histogram] = {}
        self._merged_children: dict[str, Counter] = {}
        self._unwritable_logged = False
        self._writes: Held[tuple[Callable[..., None], tuple[Any, ...]]] = Held(
            flush_seconds, self._write_all
        )

    def observe_request(
        self, endpoint: str, model: str, version: str, status: int, seconds: float
    ) -> None:
        """Count one answered request and its latency (written at once or held:
        ``serving.gateway.holding``)."""
        self._writes.add((self._write_request, (endpoint, model, version, status, seconds)))

    def observe_stage(self, stage: str, model: str, seconds: float) -> None:
        """Record one stage's seconds (``serving.gateway.inference`` times each stage with
        ``try/finally``, so a stage that raises is observed too)."""
        self._writes.add((self._write_stage, (stage, model, seconds)))

    def observe_batch(self, model: str, rows: int, requests: int) -> None:
        """Record how many examples (rows) one backend call carried, and its requests if it
        carried more than one."""
        self._writes.add((self._write_batch, (model, rows, requests)))

    def flush(self) -> None:
        """Write every held value now (``/metrics`` does, before it reads)."""
        self._writes.flush()

    def _write_all(self, writes: list[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        """Make ``writes`` in order; one that cannot be written is skipped (``_unwritable``)."""
        for write, args in writes:
            try:
                write(*args)
            # OSError: a full disk, the folder gone; anything else (a values file cut short)
            # skips this value alone, not the rest of the batch.
            except Exception as error:
                self._unwritable(error)

    def _write_request(
        self, endpoint: str, model: str, version: str, status: int, seconds: float
    ) -> None:
        key = (endpoint, model, version, status)
        children = self._request_children.get(key)
        if children is None:
            labels = (endpoint, model, version, str(status))
            children = self.requests.labels(*labels), self.latency.labels(*labels)
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def _write_stage(self, stage: str, model: str, seconds: float) -> None:
        child = self._stage_children.get((stage, model))
        if child is None:
            child = self._stage_children[(stage, model)] = self.stages.labels(stage, model)
        child.observe(seconds)

    def _write_batch(self, model: str, rows: int, requests: int) -> None:
        child = self._batch_children.get(model)
        if child is None:
            child = self._batch_children[model] = self.batch_size.labels(model)
        child.observe(rows)
        if requests > 1:  # a lone request's call writes one value less (issue 9)
            merged = self._merged_children.get(model)
            if merged is None:
                merged = self._merged_children[model] = self.merged_requests.labels(model)
            merged.inc(requests)

    def _unwritable(self, error: Exception) -> None:
        """A value that could not be written (its file cannot be made or grow: a full disk,
        a folder removed or read-only) is skipped, logged once per process: a request is
        never refused for its metrics. Found by the adversarial repo pass 6: every request
        of a worker was a 500 (``/healthz`` too) once ``PROMETHEUS_MULTIPROC_DIR`` was gone."""
        if not self._unwritable_logged:
            self._unwritable_logged = True
            LOGGER.error(
                "metrics cannot be written (%s: %s): values are skipped; free or fix %s",
                type(error).__name__,
                getattr(error, "strerror", None) or error,
                MULTIPROC_ENV,
            )

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type (all workers' values under gunicorn)."""
        self.flush()
        folder = os.environ.get(MULTIPROC_ENV)
        if not folder:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        try:
            registry = CollectorRegistry()
            ReadableFilesCollector(registry)  # type: ignore[no-untyped-call]
            with folder_lock(folder, exclusive=False):  # no dead worker's file half folded
                return generate_latest(registry), CONTENT_TYPE_LATEST
        # ValueError: the collector's "no such folder"; struct.error: a values file cut short
        except (OSError, ValueError, struct.error) as error:
            LOGGER.error("metrics cannot be read from %s: %r", MULTIPROC_ENV, error)
            raise GatewayError(
                503, f"the metrics cannot be read (the gateway's {MULTIPROC_ENV} folder)"
            ) from error
