"""The server's Prometheus metrics: request counts and latencies per label set."""

from __future__ import annotations

from serving.modelserver.metrics import ServerMetrics


def sample(metrics: ServerMetrics, name: str, **labels: str) -> float:
    value: float | None = metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"no sample {name} {labels}"
    return value


def test_requests_are_counted_and_timed_per_label_set():
    metrics = ServerMetrics()
    for seconds in (0.0004, 0.003, 0.2):
        metrics.observe_request("qa", "1", "grpc_predict", "OK", seconds)
    metrics.observe_request("qa", "1", "grpc_predict", "NOT_FOUND", 0.001)
    metrics.observe_request("qa", "2", "grpc_predict", "OK", 0.001)
    ok = {"model": "qa", "version": "1", "api": "grpc_predict"}
    assert sample(metrics, "modelserver_requests_total", **ok, code="OK") == 3
    assert sample(metrics, "modelserver_requests_total", **ok, code="NOT_FOUND") == 1
    assert sample(metrics, "modelserver_requests_total", **{**ok, "version": "2"}, code="OK") == 1
    # the latency histogram is per model/version/api, whatever the code
    assert sample(metrics, "modelserver_request_latency_seconds_count", **ok) == 4
    assert sample(metrics, "modelserver_request_latency_seconds_bucket", **ok, le="0.0005") == 1
    assert abs(sample(metrics, "modelserver_request_latency_seconds_sum", **ok) - 0.2044) < 1e-9
    assert b'code="NOT_FOUND"' in metrics.render()
