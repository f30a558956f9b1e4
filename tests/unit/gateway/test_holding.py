"""Metric values held in the worker and written together (``serving.gateway.holding``)."""

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

from serving.gateway import holding
from serving.gateway.holding import Held
from serving.gateway.metrics import GatewayMetrics

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
    holder: Held[int] = Held(3600, written.extend)
    for number in range(holding.HOLD_LIMIT):
        holder.add(number)
    assert written == list(range(holding.HOLD_LIMIT))  # in order, none held


def test_a_metric_value_that_cannot_be_written_is_skipped_and_the_others_are_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = GatewayMetrics(flush_seconds=3600)
    metrics.observe_stage("tokenise", "qa", 0.001)
    metrics.observe_request("/v1/qa", "qa", "1", 200, 0.002)

    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(metrics, "_write_stage", full_disk)
    metrics.observe_stage("tokenise", "qa", 0.001)  # held with the failing write
    metrics.observe_request("/v1/qa", "qa", "1", 200, 0.002)
    metrics.flush()
    assert _count(metrics) == 2
    stages = metrics.registry.get_sample_value(
        "gateway_stage_duration_seconds_count", {"stage": "tokenise", "model": "qa"}
    )
    assert stages == 1  # the one that could not be written is skipped, logged once


def test_a_dropped_holder_stops_its_flusher() -> None:
    # Not kept alive by its thread: every app a test (or a reload) drops would keep one.
    before = set(_flushers())
    holder: Held[str] = Held(0.01, lambda items: None)
    holder.add("a value")
    (flusher,) = set(_flushers()) - before
    del holder
    gc.collect()
    flusher.join(timeout=10)
    assert not flusher.is_alive()


def _flushers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == holding.FLUSHER_NAME]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_never_writes_its_parents_items() -> None:
    # The child dropped them at its first held item only: a flush before (a scrape, a log
    # line: JsonLinesHandler.emit) wrote the parent's items in the child too.
    written: list[str] = []
    holder: Held[str] = Held(3600, written.extend)
    holder.add("parent")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: flush before holding anything, then its own; report both
        try:
            holder.flush()
            before = ",".join(written) or "-"
            holder.add("child")
            holder.flush()
            os.write(write_end, f"{before};{','.join(written)}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        assert pipe.read() == b"-;child"
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
