"""What an operator reads of the gateway under real gunicorn: every answer one JSON access line
with its request id and a count in ``/metrics``, every log line one JSON object.

gunicorn answers some requests itself before the app runs (a malformed request line or
header, a header block or URI too large); those answers had no access line, no
``X-Request-ID`` and no count, and gunicorn's own lines were in its text format.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from serving.gateway.launcher import RunningGateway, running_gateway
from serving.processes import free_port
from tests.support.raw_http import parse_answer, send_raw

pytestmark = pytest.mark.slow
LATENCY_COUNT = "gateway_request_duration_seconds_count"


@pytest.fixture
def gateway(class_gateway: RunningGateway) -> RunningGateway:
    """Each worker class's stack, shared with the other modules (conftest.py)."""
    return class_gateway


def _raw(url: str, request: bytes) -> tuple[int, dict[str, str]]:
    """Send ``request`` as is; the answer's status and headers (lower-case names)."""
    status, headers, _ = parse_answer(send_raw(url, request))
    return status, headers


def _log_entries(gateway: RunningGateway) -> list[dict[str, Any]]:
    """Every line of the gateway's output, each parsed as one JSON object."""
    entries = [json.loads(line) for line in gateway.log_text().splitlines()]
    assert all(isinstance(entry, dict) for entry in entries)
    return entries


def _count(gateway: RunningGateway, name: str = "gateway_requests_total", **labels: str) -> float:
    """The sum of sample ``name`` over the samples that have ``labels``."""
    text = requests.get(f"{gateway.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
        and all(sample.labels.get(key) == value for key, value in labels.items())
    )


def _settled_count(gateway: RunningGateway, **labels: str) -> float:
    """:func:`_count` once two scrapes a few flush intervals apart agree (bounded wait): a
    worker a scrape did not reach writes its values up to ``GATEWAY_METRICS_FLUSH_SECONDS``
    (0.1 s) late, so a count read at once may miss an earlier test's request."""
    deadline = time.monotonic() + 15
    count = _count(gateway, **labels)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        count, last = _count(gateway, **labels), count
        if count == last:
            break
    return count


def _count_reaching(
    gateway: RunningGateway, target: float, name: str = "gateway_requests_total", **labels: str
) -> float:
    """:func:`_count` once it reaches ``target``, or when a bounded wait ends."""
    deadline = time.monotonic() + 15
    while (count := _count(gateway, name, **labels)) < target and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400),
        (b"GET /healthz HTTP/9.9\r\n\r\n", 400),  # a malformed request line
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431),
        (b"GET /" + b"a" * 5_000 + b" HTTP/1.1\r\n\r\n", 414),
    ],
)
def test_a_refusal_of_gunicorn_is_logged_and_counted_with_its_id(
    gateway: RunningGateway, request_bytes: bytes, status: int
) -> None:
    before = _settled_count(gateway, endpoint="unmatched", status=str(status))
    code, headers = _raw(gateway.url, request_bytes)
    assert code == status
    request_id = headers["x-request-id"]  # every answer carries one (README)
    _wait_for_access_line(gateway, request_id)
    lines = [entry for entry in _log_entries(gateway) if entry.get("request_id") == request_id]
    access = [entry for entry in lines if entry["logger"] == "serving.gateway.access"]
    assert len(access) == 1 and access[0]["status"] == status
    assert access[0]["duration_ms"] >= 0
    # gunicorn's own line on the refusal is JSON and names the same request.
    assert any(entry["logger"] == "gunicorn.error" for entry in lines)
    assert _count_reaching(gateway, before + 1, endpoint="unmatched", status=str(status)) == (
        before + 1
    )


def test_an_unread_chunked_body_gets_one_answer(gateway: RunningGateway) -> None:
    # A 415 answered before the chunked body was read; gunicorn then parsed the rest of the
    # body as it read the next request, and its bad chunk got a second answer (400, a second
    # access line), read by a pipelining client as the answer to its GET.
    request_id = f"unread-{gateway.process.pid}"
    request = (
        b"POST /v1/qa HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
        b"X-Request-ID: " + request_id.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = send_raw(gateway.url, request)
    assert received.count(b"HTTP/1.1 ") == 1 and received.startswith(b"HTTP/1.1 415")
    assert b"Connection: close" in received
    # The answer is recorded once written and the connection's rest read off (linger), which
    # ends when this client has closed: a moment after send_raw returned.
    _wait_for_access_line(gateway, request_id)
    time.sleep(0.4)  # a second answer's line, if any, would be written by now (held 0.1 s)
    assert [entry["status"] for entry in _access_lines(gateway, request_id)] == [415]


def _access_lines(gateway: RunningGateway, request_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in _log_entries(gateway)
        if entry["logger"] == "serving.gateway.access" and entry.get("request_id") == request_id
    ]


def _wait_for_access_line(gateway: RunningGateway, request_id: str) -> None:
    """Until the access line of ``request_id`` is in the log (bounded wait): a worker holds
    its access lines up to ``GATEWAY_ACCESS_LOG_FLUSH_SECONDS`` (README), and writes a
    refusal's once it has read off the connection's rest (linger)."""
    deadline = time.monotonic() + 15
    while not _access_lines(gateway, request_id) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_every_line_the_gateway_writes_is_json(gateway: RunningGateway) -> None:
    # gunicorn's start-up lines and its warning on a refused request were text lines.
    assert _raw(gateway.url, b"GARBAGE\r\n\r\n")[0] == 400
    answer = requests.get(f"{gateway.url}/readyz", timeout=10)
    _wait_for_access_line(gateway, answer.headers["X-Request-ID"])
    loggers = {entry["logger"] for entry in _log_entries(gateway)}
    assert {"gunicorn.error", "serving.gateway.access"} <= loggers


def test_replaced_workers_leave_their_counts_but_not_their_files(
    tiny_repo: Path, tmp_path: Path
) -> None:
    # A worker gunicorn replaced (killed here; GATEWAY_MAX_REQUESTS, a timeout) left its
    # counter and histogram files for good: every scrape read them all (500 replaced
    # workers: 0.45 s a scrape instead of 0.02 s, growing without end).
    folder = tmp_path / "metrics"
    settings = {
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_GRPC_TARGET": f"127.0.0.1:{free_port()}",  # /healthz asks no model server
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    with running_gateway(settings, workers=1) as gateway:
        before = _count(gateway, endpoint="/healthz")
        timed = _count(gateway, LATENCY_COUNT, endpoint="/healthz")
        for replaced in range(2):
            for _ in range(5):
                assert requests.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
            # Written before the kill (a scrape makes its worker write what it holds): a
            # worker killed with SIGKILL loses what it still holds (README).
            assert _count_reaching(gateway, before + 5 * (replaced + 1), endpoint="/healthz")
            _replace_worker(gateway)
        assert _dead_worker_files(gateway, folder) == []
        # Every answer stays counted: the replaced workers' counts are in the archive.
        assert _count(gateway, endpoint="/healthz") == before + 10
        assert _count(gateway, LATENCY_COUNT, endpoint="/healthz") == timed + 10


def _replace_worker(gateway: RunningGateway) -> None:
    """Kill the one worker and wait (bounded) for gunicorn to boot the next."""
    (pid,) = gateway.worker_pids()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while gateway.worker_pids() in ([], [pid]) and time.monotonic() < deadline:
        time.sleep(0.1)


def _dead_worker_files(gateway: RunningGateway, folder: Path) -> list[str]:
    """The metrics files of pids that are no live worker, once the master has handled the
    workers that ended (bounded wait: it folds their files when it reaps them)."""
    deadline = time.monotonic() + 30
    while True:
        live = {str(pid) for pid in gateway.worker_pids()} | {"archive"}
        dead = sorted(
            path.name for path in folder.glob("*.db") if path.stem.split("_")[-1] not in live
        )
        if not dead or time.monotonic() > deadline:
            return dead
        time.sleep(0.2)


@pytest.mark.parametrize("worker_class", ["gevent", "gthread"])
def test_a_stopped_worker_writes_what_it_held(
    tiny_repo: Path, tmp_path: Path, worker_class: str
) -> None:
    # Access lines and metric values are held up to their flush intervals (a minute here, so
    # only the exit can write them): a graceful stop writes them (atexit in the worker), once,
    # before gunicorn's "Worker exiting" (another handler: it was written before them).
    folder = tmp_path / "metrics"
    folder.mkdir()
    settings = {
        "GATEWAY_WORKER_CLASS": worker_class,
        "GATEWAY_MODEL_REPO": str(tiny_repo),
        "GATEWAY_GRPC_TARGET": f"127.0.0.1:{free_port()}",  # /healthz asks no model server
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "GATEWAY_ACCESS_LOG_FLUSH_SECONDS": "60",
        "GATEWAY_METRICS_FLUSH_SECONDS": "60",
    }
    with running_gateway(settings, workers=1) as gateway:
        answer = requests.get(f"{gateway.url}/healthz", headers={"X-Request-ID": "held-1"})
        assert answer.status_code == 200
        assert not _access_lines(gateway, "held-1")  # held
        gateway.process.send_signal(signal.SIGTERM)
        gateway.process.wait(timeout=60)
        assert [entry["status"] for entry in _access_lines(gateway, "held-1")] == [200]
        entries = _log_entries(gateway)
        held = [at for at, entry in enumerate(entries) if entry.get("request_id") == "held-1"]
        exiting = [at for at, entry in enumerate(entries) if "Worker exiting" in entry["message"]]
        assert held and exiting and held[-1] < exiting[0]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(folder))
    # The launcher's readiness polls and this request, all answered by the one worker.
    counted = registry.get_sample_value(
        "gateway_requests_total",
        {"endpoint": "/healthz", "model": "", "version": "", "status": "200"},
    )
    assert counted is not None and counted >= 1
