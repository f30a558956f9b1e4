"""The stage timer: one observation per stage, also when the stage raises (never swallowed)."""

from __future__ import annotations

import pytest

from serving.gateway.metrics import GatewayMetrics


def _count(metrics: GatewayMetrics, stage: str) -> float:
    value = metrics.registry.get_sample_value(
        "gateway_stage_duration_seconds_count", {"stage": stage, "model": "qa"}
    )
    return value or 0.0


def test_a_stage_is_observed_once_and_its_error_propagates() -> None:
    metrics = GatewayMetrics()
    with metrics.stage("tokenise", "qa"):
        pass
    with pytest.raises(KeyError), metrics.stage("backend", "qa"):
        raise KeyError("raised inside the stage")
    assert _count(metrics, "tokenise") == 1.0
    assert _count(metrics, "backend") == 1.0
    assert _count(metrics, "postprocess") == 0.0
    seconds = metrics.registry.get_sample_value(
        "gateway_stage_duration_seconds_sum", {"stage": "tokenise", "model": "qa"}
    )
    assert seconds is not None and seconds >= 0.0
