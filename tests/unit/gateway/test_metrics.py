"""Stage timings: one observation per stage and model, in its own histogram child.

That a stage which raises is still observed, and its error reaches the client, is the
request path's job (``try/finally`` in ``serving.gateway.inference``): see
``tests/api/test_request_state.py::test_each_stage_that_ran_is_counted_once_when_it_fails``.
"""

from __future__ import annotations

from serving.gateway.metrics import GatewayMetrics


def _count(metrics: GatewayMetrics, stage: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_stage_duration_seconds_count", {"stage": stage, "model": "qa"}
    )
    return value or 0.0


def test_a_stage_is_observed_once() -> None:
    metrics = GatewayMetrics()
    metrics.observe_stage("tokenise", "qa", 0.002)
    metrics.observe_stage("backend", "qa", 0.01)
    assert _count(metrics, "tokenise") == 1.0
    assert _count(metrics, "backend") == 1.0
    assert _count(metrics, "postprocess") == 0.0
    seconds = metrics.registry.get_sample_value(
        "gateway_stage_duration_seconds_sum", {"stage": "tokenise", "model": "qa"}
    )
    assert seconds is not None and seconds >= 0.0
