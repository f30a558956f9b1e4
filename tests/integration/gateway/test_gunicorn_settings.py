"""gunicorn_conf.py's settings under real gunicorn: ``GATEWAY_CPU_AFFINITY=per-worker`` (each
worker on its own CPU of the master's set, a restarted worker on the CPU its predecessor
freed, a wrong value refused) and misspelt ``GATEWAY_*`` variables named at start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from serving.gateway.launcher import PROJECT_ROOT, RunningGateway, running_gateway
from serving.processes import free_port

pytestmark = pytest.mark.slow
# /healthz answers without a backend: no model server is needed to see where workers run.
NO_BACKEND = {"GATEWAY_BACKEND": "grpc", "GATEWAY_GRPC_TARGET": f"127.0.0.1:{free_port()}"}


@pytest.fixture(autouse=True)
def model_repo(tiny_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repo folder that exists: the gateway refuses to boot on a missing one (its default
    ``model_repo`` is relative to the working directory)."""
    monkeypatch.setenv("GATEWAY_MODEL_REPO", str(tiny_repo))


def cpus_of(pids: list[int]) -> dict[int, set[int]]:
    return {pid: os.sched_getaffinity(pid) for pid in pids}


def wait_for_workers(gateway: RunningGateway, count: int, besides: set[int]) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = gateway.worker_pids()
        if len(pids) == count and not besides & set(pids):
            return pids
        time.sleep(0.1)
    raise TimeoutError(f"no {count} new workers: {gateway.log_text()[-2000:]}")


def wait_for_pinning(gateway: RunningGateway, pids: list[int]) -> None:
    # A worker is listed from its fork; it pins itself a moment later, in post_fork, and
    # logs it: reading its CPUs before that line saw the master's set (a flaky failure).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = gateway.log_text()
        if all(f"gateway worker {pid} started on CPU" in text for pid in pids):
            return
        time.sleep(0.1)
    raise TimeoutError(f"workers {pids} not pinned: {gateway.log_text()[-2000:]}")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_each_worker_runs_on_its_own_cpu_and_a_restart_takes_the_freed_one() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    with running_gateway({**NO_BACKEND, "GATEWAY_CPU_AFFINITY": "per-worker"}) as gateway:
        pids = wait_for_workers(gateway, 2, set())
        wait_for_pinning(gateway, pids)
        placed = cpus_of(pids)
        assert sorted(len(cpus) for cpus in placed.values()) == [1, 1]
        assert {cpu for cpus in placed.values() for cpu in cpus} == set(allowed[:2])
        killed = pids[0]
        os.kill(killed, signal.SIGKILL)
        (new,) = set(wait_for_workers(gateway, 2, {killed})) - set(pids)
        wait_for_pinning(gateway, [new])
        assert os.sched_getaffinity(new) == placed[killed]
        assert f"gateway worker {new} started on CPU {min(placed[killed])}" in gateway.log_text()


def test_off_by_default_workers_keep_the_masters_cpus() -> None:
    # A misspelt setting kept its default without a word (GATEWAY_WORKRES: still 2 workers).
    with running_gateway({**NO_BACKEND, "GATEWAY_WORKRES": "3"}) as gateway:
        pids = wait_for_workers(gateway, 2, set())
        assert all(cpus == os.sched_getaffinity(0) for cpus in cpus_of(pids).values())
        assert (
            "GATEWAY_WORKRES is not a gateway setting and is ignored (did you mean "
            "GATEWAY_WORKERS?)" in gateway.log_text()
        )


def test_an_unknown_mode_stops_gunicorn_naming_it() -> None:
    environment = {
        **os.environ,
        **NO_BACKEND,
        "PYTHONPATH": str(PROJECT_ROOT),
        "GATEWAY_PORT": str(free_port()),
        "GATEWAY_BIND_HOST": "127.0.0.1",
        "GATEWAY_CPU_AFFINITY": "per-core",
    }
    done = subprocess.run(
        [sys.executable, "-m", "serving.gateway.command"],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # one line, as every bad gunicorn setting (no traceback)
    assert done.stderr.strip().splitlines()[-1] == (
        "GATEWAY_CPU_AFFINITY must be one of off, per-worker, not 'per-core'"
    )
    assert "Traceback" not in done.stderr


def test_without_a_metrics_folder_metrics_still_sum_every_worker() -> None:
    # Unset, each worker counted alone and /metrics answered with the worker a scrape
    # reached: a counter at 700, absent, 700 from scrape to scrape (Prometheus reads resets).
    # Values written at once: a held value of the worker a scrape did not reach would show
    # up a flush later (README), which is not what this test is about.
    settings = {**NO_BACKEND, "PROMETHEUS_MULTIPROC_DIR": "", "GATEWAY_METRICS_FLUSH_SECONDS": "0"}
    with running_gateway(settings, workers=2) as gateway:
        assert "PROMETHEUS_MULTIPROC_DIR is not set: the workers' metrics go to" in (
            gateway.log_text()
        )
        for _ in range(20):  # a new connection each: both workers answer some
            with requests.Session() as session:
                assert session.get(f"{gateway.url}/healthz", timeout=10).status_code == 200
        counts = set()
        for _ in range(6):
            with requests.Session() as session:
                text = session.get(f"{gateway.url}/metrics", timeout=10).text
            counts.add(sample(text, 'gateway_requests_total{endpoint="/healthz"'))
        (count,) = counts  # the same in every scrape: every worker's counts summed
        assert count is not None and count >= 20  # (the launcher's own /healthz polls too)
        folder = gateway.log_text().split("the workers' metrics go to ", 1)[1].split('"')[0]
        assert Path(folder).is_dir()
    assert not Path(folder).exists()  # removed when gunicorn stopped


def sample(text: str, prefix: str) -> float | None:
    """The value of the one sample line of ``text`` starting with ``prefix``."""
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None
