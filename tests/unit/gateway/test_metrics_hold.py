"""Metric values held in the worker and written together (``serving.gateway.metrics_hold``)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from serving.gateway import metrics_hold
from serving.gateway.metrics import GatewayMetrics
from serving.gateway.metrics_hold import HeldWrites

LABELS = {"endpoint": "/v1/qa", "model": "qa", "version": "1", "status": "200"}
ROOT = Path(__file__).resolve().parents[3]


def _count(metrics: GatewayMetrics) -> float | None:
    return metrics.registry.get_sample_value("gateway_requests_total", LABELS)


def test_held_values_are_written_by_a_scrape_of_the_worker() -> None:
    metrics = GatewayMetrics(flush_seconds=3600)
    metrics.observe_request("/v1/qa", "qa", "1", 200, 0.002)
    metrics.observe_stage("tokenise", "qa", 0.0001)
    assert _count(metrics) is None  # held, not written yet
    body, _ = metrics.exposition()
    assert b'gateway_requests_total{endpoint="/v1/qa",model="qa",status="200",version="1"} 1.0' in (
        body
    )
    assert b'gateway_stage_duration_seconds_count{model="qa",stage="tokenise"} 1.0' in body


def test_held_values_are_written_within_the_interval_without_a_scrape() -> None:
    metrics = GatewayMetrics(flush_seconds=0.02)
    for _ in range(3):
        metrics.observe_request("/v1/qa", "qa", "1", 200, 0.002)
    deadline = time.monotonic() + 10  # bounded: the flusher runs every 0.02 s
    while _count(metrics) != 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _count(metrics) == 3


def test_zero_seconds_writes_each_value_at_once() -> None:
    metrics = GatewayMetrics(flush_seconds=0)
    before = set(_flushers())
    metrics.observe_request("/v1/qa", "qa", "1", 200, 0.002)
    assert _count(metrics) == 1
    assert set(_flushers()) <= before  # none started (an earlier test's may be ending)


def test_a_full_queue_is_written_by_the_request_that_fills_it() -> None:
    written: list[int] = []
    holder = HeldWrites(3600, on_error=lambda error: None)
    for number in range(metrics_hold.HOLD_LIMIT):
        holder.submit(written.append, number)
    assert written == list(range(metrics_hold.HOLD_LIMIT))  # in order, none held


def test_a_write_that_fails_is_reported_and_the_others_are_made() -> None:
    written: list[int] = []
    errors: list[OSError] = []

    def full_disk(number: int) -> None:
        raise OSError(28, "No space left on device")

    holder = HeldWrites(3600, on_error=errors.append)
    holder.submit(written.append, 1)
    holder.submit(full_disk, 2)
    holder.submit(written.append, 3)
    holder.flush()
    assert written == [1, 3]
    assert [error.errno for error in errors] == [28]


def test_a_dropped_holder_stops_its_flusher() -> None:
    # Not kept alive by its thread: every app a test (or a reload) drops would keep one.
    before = set(_flushers())
    holder = HeldWrites(0.01, on_error=lambda error: None)
    holder.submit(len, "a value")
    (flusher,) = set(_flushers()) - before
    del holder
    gc.collect()
    flusher.join(timeout=10)
    assert not flusher.is_alive()


def _flushers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "gateway-metrics-flush"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_does_not_write_what_its_parent_held() -> None:
    written: list[str] = []
    holder = HeldWrites(3600, on_error=lambda error: None)
    holder.submit(written.append, "parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: hold one value of its own, flush, report what it wrote
        holder.submit(written.append, "child")
        holder.flush()
        os.write(write_end, ",".join(written).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"child"
    holder.flush()
    assert written == ["parent"]


def test_what_a_process_holds_at_exit_is_written(tmp_path: Path) -> None:
    # gunicorn's workers leave through sys.exit (a graceful stop, GATEWAY_MAX_REQUESTS).
    folder = tmp_path / "metrics"
    folder.mkdir()
    script = (
        "from serving.gateway.metrics import GatewayMetrics\n"
        "metrics = GatewayMetrics(flush_seconds=3600)\n"
        "metrics.observe_request('/v1/qa', 'qa', '1', 200, 0.002)\n"
        "raise SystemExit(0)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(folder))
    assert registry.get_sample_value("gateway_requests_total", LABELS) == 1
