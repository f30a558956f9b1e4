"""Prometheus metrics of one server, in a registry the server owns (no global state)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServerMetrics:
    """Request count and latency per model/version/API, batch sizes, queue depth, versions."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelserver_requests",
            "Requests handled, by model, version, API and status code.",
            ["model", "version", "api", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelserver_request_latency_seconds",
            "Time to answer a request, by model, version and API.",
            ["model", "version", "api"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "modelserver_batch_size",
            "Rows per TF call made by the batching queue.",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "modelserver_queue_depth",
            "Rows waiting in the batching queue.",
            ["model", "version"],
            registry=self.registry,
        )
        self.split_calls = Counter(
            "modelserver_batch_calls",
            "TF calls made by batches split by length (--batching_split_by_length).",
            ["model", "version"],
            registry=self.registry,
        )
        self.call_cost = Gauge(
            "modelserver_batch_call_cost_cells",
            "Learned fixed cost of one TF call, in padded id cells (-1: not yet learned).",
            ["model", "version"],
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}
        self.available_versions = Gauge(
            "modelserver_available_versions",
            "Versions of a model that are AVAILABLE.",
            ["model"],
            registry=self.registry,
        )

    def observe_request(
        self, model: str, version: str, api: str, code: str, seconds: float
    ) -> None:
        """Count one request and record its latency."""
        key = (model, version, api, code)
        children = self._request_children.get(key)
        if children is None:  # labels() validates and locks: looked up once per label set
            children = (self.requests.labels(*key), self.latency.labels(model, version, api))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_split(self, model: str, version: str, calls: int, call_cost: float) -> None:
        """Count the TF calls of one batch run split by length, and the call cost it used."""
        self.split_calls.labels(model, version).inc(calls)
        self.call_cost.labels(model, version).set(call_cost)

    def forget_version(self, model: str, version: str) -> None:
        """Drop the gauges of a version that was unloaded (its queue depth, its call cost):
        a gauge is a state of now, and a version gone has none. Its counters and histograms
        stay (they only add up, and a series that vanishes reads as a reset)."""
        for gauge in (self.queue_depth, self.call_cost):
            with contextlib.suppress(KeyError):  # never observed (no batching, no split)
                gauge.remove(model, version)

    def forget_model(self, model: str) -> None:
        """Drop ``modelserver_available_versions`` of a model removed from the config: a
        series left at 0 fired "no version available" alerts for a model no longer served."""
        with contextlib.suppress(KeyError):
            self.available_versions.remove(model)

    def render(self) -> bytes:
        """The registry in Prometheus text exposition format."""
        return generate_latest(self.registry)
