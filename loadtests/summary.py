"""Per-step latency and throughput figures of a step-load run (no locust import: testable).

The locustfile feeds every request into a :class:`StepRecorder`; at the end its
:meth:`StepRecorder.summary` gives, per step (concurrency) and request name, the request
count, failures, requests/s and exact p50/p95/p99 latencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

PERCENTILES = (50, 95, 99)
GRPC_PREFIX = "grpc "
GATEWAY_PREFIX = "/v1/"


@dataclass
class StepRecorder:
    """Collects response times per (step, request name), skipping each step's warm-up."""

    steps: Sequence[int]
    step_seconds: float
    warmup_seconds: float
    times_ms: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    failures: dict[tuple[int, str], int] = field(default_factory=dict)

    def step_at(self, run_time: float) -> int | None:
        """The index of the step running at run_time, None during a warm-up or after the end."""
        index = int(run_time // self.step_seconds)
        if index >= len(self.steps) or run_time - index * self.step_seconds < self.warmup_seconds:
            return None
        return index

    def record(self, run_time: float, name: str, response_ms: float, failed: bool) -> None:
        """Add one finished request (failed ones count in latency too, as in locust)."""
        index = self.step_at(run_time)
        if index is None:
            return
        self.times_ms.setdefault((index, name), []).append(response_ms)
        if failed:
            self.failures[(index, name)] = self.failures.get((index, name), 0) + 1

    def summary(self) -> dict[str, Any]:
        """Figures per step and request name, and gateway-minus-backend p50 per model."""
        measured = self.step_seconds - self.warmup_seconds
        steps = []
        for index, users in enumerate(self.steps):
            names = sorted(name for step, name in self.times_ms if step == index)
            endpoints = {
                name: figures(self.times_ms[(index, name)], self.failures.get((index, name), 0))
                | {"rps": round(len(self.times_ms[(index, name)]) / measured, 2)}
                for name in names
            }
            steps.append({"users": users, "seconds": measured, "endpoints": endpoints})
        return {"steps": steps, "gateway_minus_backend_p50_ms": overheads(steps)}


def figures(times_ms: Sequence[float], failures: int) -> dict[str, Any]:
    """Count, failures and latency percentiles of one request name in one step."""
    values = np.asarray(times_ms, dtype=np.float64)
    result: dict[str, Any] = {"requests": len(values), "failures": failures}
    for percentile in PERCENTILES:
        result[f"p{percentile}_ms"] = round(float(np.percentile(values, percentile)), 2)
    result["mean_ms"] = round(float(values.mean()), 2)
    return result


def overheads(steps: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gateway p50 minus direct gRPC p50 for each model measured both ways in a step."""
    rows = []
    for step in steps:
        endpoints = step["endpoints"]
        for name, backend in endpoints.items():
            if not name.startswith(GRPC_PREFIX):
                continue
            gateway = endpoints.get(GATEWAY_PREFIX + name.removeprefix(GRPC_PREFIX))
            if gateway is None:
                continue
            rows.append(
                {
                    "users": step["users"],
                    "model": name.removeprefix(GRPC_PREFIX),
                    "gateway_p50_ms": gateway["p50_ms"],
                    "backend_p50_ms": backend["p50_ms"],
                    "difference_ms": round(gateway["p50_ms"] - backend["p50_ms"], 2),
                }
            )
    return rows
