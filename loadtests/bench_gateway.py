"""Benchmark (not a test): the gateway vs an in-process HTTP server vs direct calls.

For each endpoint (qa, profile, similarity) at each concurrency (1, 8, 32 clients) it prints
p50/p95/p99 latency, requests/s, the CPU milliseconds per request of the serving processes
(``utime + stime`` from ``/proc/<pid>/stat`` before/after the cell, divided by the requests
answered) and their RSS, with the machine's load average:

- ``gateway``: gunicorn (``--worker-class``, default gevent) with the gRPC backend; CPU is the
  gateway workers' only, the local model server's is the ``backend ms`` column;
- ``inproc-http``: the same API answered by one gunicorn gthread worker that runs the
  SavedModels itself (the gateway's runtime units with ``GATEWAY_BACKEND=local``): the
  baseline of issue 9;
- ``grpc``: a direct ``Predict`` with the same tensors (CPU: the model server's);
- ``in-process``: the SavedModel called in this process (``--direct`` only).

Clients are threads with one keep-alive ``http.client`` connection each (cheap on CPU, so
the load generator disturbs the figures little). ``--profile-dir`` records each endpoint's
gateway cell at the highest concurrency with py-spy (raw stacks + summary).

    PYTHONPATH=. python -m loadtests.bench_gateway --tiny
    PYTHONPATH=. python -m loadtests.bench_gateway --tiny --only gateway --profile-dir /tmp/prof
"""

from __future__ import annotations

import argparse
import http.client
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from loadtests import procstat, profiling
from serving.encoding import Tensors
from serving.gateway.aliases import prepare_alias
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.launcher import running_gateway
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.modelserver.launcher import (
    configured_models,
    launch,
    server_command,
    wait_until_available,
)
from serving.processes import stop_process

STORY = (
    "Mary moved to the bathroom. John went to the hallway. Daniel travelled to the office. "
    "Sandra journeyed to the garden. Mary went to the kitchen."
)
PAYLOADS: dict[str, dict[str, Any]] = {
    "qa": {"article": STORY, "question": "Where is Mary?"},
    "profile": {"posts": ["Long day at work, then the garden.", "Reading about cooking today."]},
    "similarity": {
        "pairs": [{"text_a": "A man plays a guitar.", "text_b": "A person plays music."}]
    },
}
PATHS = ("gateway", "inproc-http", "grpc", "in-process")
Pids = Callable[[], list[int]]


@dataclass(frozen=True)
class Figures:
    """Latency percentiles (ms), throughput (requests/s), CPU ms per request, RSS (MB)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_second: float
    cpu_ms: float
    backend_cpu_ms: float
    rss_mb: float


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def measure(
    call: Callable[[], None], concurrency: int, total: int, server: Pids, backend: Pids
) -> Figures:
    """Run ``total`` calls over ``concurrency`` threads; time each, and count server CPU."""
    per_thread = max(1, total // concurrency)
    latencies: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = []
        for _ in range(per_thread):
            start = time.perf_counter()
            call()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    server_pids, backend_pids = server(), backend()
    cpu_before = procstat.cpu_seconds(server_pids), procstat.cpu_seconds(backend_pids)
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - start
    cpu_after = procstat.cpu_seconds(server_pids), procstat.cpu_seconds(backend_pids)
    answered = len(latencies)
    ordered = sorted(latencies)
    return Figures(
        p50_ms=percentile(ordered, 0.5) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        per_second=answered / elapsed,
        cpu_ms=(cpu_after[0] - cpu_before[0]) * 1000 / answered,
        backend_cpu_ms=(cpu_after[1] - cpu_before[1]) * 1000 / answered,
        rss_mb=sum(procstat.rss_mb(pid) for pid in server_pids),
    )


def http_call(url: str, endpoint: str) -> Callable[[], None]:
    """POST the endpoint's payload over a keep-alive connection per thread."""
    local = threading.local()
    address = urlsplit(url)
    body = json.dumps(PAYLOADS[endpoint]).encode()
    headers = {"Content-Type": "application/json"}

    def send() -> http.client.HTTPResponse:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(address.netloc, timeout=30)
        connection: http.client.HTTPConnection = local.connection
        connection.request("POST", f"/v1/{endpoint}", body, headers)
        return connection.getresponse()

    def call() -> None:
        try:
            response = send()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes a keep-alive connection idle for `keepalive` seconds, as
            # between two measurements: open a new one, as any HTTP client would.
            local.connection.close()
            del local.connection
            response = send()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{endpoint}: HTTP {response.status}")

    return call


def tensors_for(runtime: ModelRuntime, endpoint: str) -> Tensors:
    """The exact tensors the gateway sends for the endpoint's payload."""
    return runtime.preprocess(prepare_alias(runtime, PAYLOADS[endpoint]).instances)


def backend_call(backend: Backend, model: str, version: int, tensors: Any) -> Callable[[], None]:
    """One Predict of fixed tensors, pinned to a version."""
    selector = VersionSelector(version=version)

    def call() -> None:
        backend.predict(model, selector, tensors)

    return call


@contextmanager
def model_server(repo: Path) -> Iterator[tuple[str, int]]:
    """The local model server for repo; yields its gRPC target and pid."""
    server = launch(server_command(repo))
    try:
        wait_until_available(server.rest_url, configured_models(repo), timeout=180)
        yield server.grpc_target, server.process.pid
    finally:
        stop_process(server.process)


@dataclass(frozen=True)
class Options:
    """What to measure."""

    repo: Path
    concurrencies: list[int]
    total: int
    workers: int
    worker_class: str
    paths: tuple[str, ...]
    profile_dir: Path | None
    profile_seconds: int
    log_level: str


Cell = tuple[Callable[[], None], Pids, Pids]  # the call, server pids, backend pids
NO_PIDS: Pids = list


def run(options: Options) -> None:
    """Start the servers, measure every cell and print a table."""
    repo = options.repo
    with ExitStack() as stack:
        target, server_pid = stack.enter_context(model_server(repo))

        def backend_pids() -> list[int]:
            return [server_pid, *procstat.children(server_pid)]

        # INFO (the default) writes one JSON access line per request: part of the real cost.
        environment = {"GATEWAY_MODEL_REPO": str(repo), "GATEWAY_LOG_LEVEL": options.log_level}
        gateway_env = {"GATEWAY_BACKEND": "grpc", "GATEWAY_GRPC_TARGET": target}
        gateway = stack.enter_context(
            running_gateway(
                {**environment, **gateway_env, "GATEWAY_WORKER_CLASS": options.worker_class},
                workers=options.workers,
                ready_path="/readyz",
                timeout=180,
            )
        )
        urls = {"gateway": (gateway.url, gateway.worker_pids, backend_pids)}
        if "inproc-http" in options.paths:
            local_env = {"GATEWAY_BACKEND": "local", "GATEWAY_WORKER_CLASS": "gthread"}
            baseline = stack.enter_context(
                running_gateway(
                    {**environment, **local_env}, workers=1, threads=8, ready_path="/readyz"
                )
            )
            urls["inproc-http"] = (baseline.url, baseline.worker_pids, NO_PIDS)
        direct = GrpcBackend(target)
        stack.callback(direct.close)
        backends: dict[str, tuple[Backend, Pids]] = {"grpc": (direct, backend_pids)}
        if "in-process" in options.paths:
            from serving.gateway.backends.local_backend import LocalBackend  # imports TF

            backends["in-process"] = (LocalBackend(repo), NO_PIDS)
        print(f"load average (1/5/15 min) at start: {procstat.load_average()}")
        print(
            f"{'endpoint':<11}{'conc':>5} {'path':<12}{'p50':>8}{'p95':>8}{'p99':>8}"
            f"{'req/s':>8}{'cpu ms':>8}{'be ms':>7}{'RSS MB':>8}  load"
        )
        for endpoint in PAYLOADS:
            version = requests.post(
                f"{gateway.url}/v1/{endpoint}", json=PAYLOADS[endpoint], timeout=30
            ).json()["model"]["version"]
            runtime = load_runtime(repo, endpoint, version, GatewaySettings(model_repo=repo))
            tensors = tensors_for(runtime, endpoint)
            cells: dict[str, Cell] = {
                name: (http_call(url, endpoint), server, backend)
                for name, (url, server, backend) in urls.items()
            }
            for name, (backend, pids) in backends.items():
                cells[name] = (backend_call(backend, endpoint, version, tensors), pids, NO_PIDS)
            for concurrency in options.concurrencies:
                for name in options.paths:
                    profile = name == "gateway" and concurrency == max(options.concurrencies)
                    _measure_cell(options, endpoint, concurrency, name, cells[name], profile)
        print(
            f"gateway: {options.workers} {options.worker_class} workers; start-up (spawn -> "
            f"/readyz) {gateway.startup_seconds:.2f} s"
        )


def _measure_cell(
    options: Options, endpoint: str, concurrency: int, name: str, cell: Cell, profile: bool
) -> None:
    call, server, backend = cell
    for _ in range(20):  # warm connections, caches and TF graphs
        call()
    recorder = None
    if profile and options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
        raw = options.profile_dir / f"{endpoint}.txt"
        recorder = profiling.record(server()[0], options.profile_seconds, raw)
    figures = measure(call, concurrency, options.total, server, backend)
    if recorder is not None:
        recorder.wait()
    print(
        f"{endpoint:<11}{concurrency:>5} {name:<12}{figures.p50_ms:>8.2f}"
        f"{figures.p95_ms:>8.2f}{figures.p99_ms:>8.2f}{figures.per_second:>8.1f}"
        f"{figures.cpu_ms:>8.2f}{figures.backend_cpu_ms:>7.2f}"
        f"{figures.rss_mb:>8.1f}  {procstat.load_average()}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--tiny", action="store_true", help="build tiny models in a temp dir")
    parser.add_argument("--requests", type=int, default=400, help="calls per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gevent", help="gunicorn worker class")
    parser.add_argument("--only", nargs="+", choices=PATHS, default=list(PATHS[:3]))
    parser.add_argument("--direct", action="store_true", help="also the in-process SavedModel")
    parser.add_argument("--profile-dir", type=Path, help="py-spy the gateway's busiest cells")
    parser.add_argument("--profile-seconds", type=int, default=8, help="py-spy sampling window")
    parser.add_argument("--log-level", default="INFO", help="the gateway's GATEWAY_LOG_LEVEL")
    arguments = parser.parse_args(argv)
    paths = tuple(arguments.only) + (("in-process",) if arguments.direct else ())
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        repo = arguments.model_repo
        if arguments.tiny:
            from training.tiny import build_tiny_repo

            repo = build_tiny_repo(Path(scratch) / "model_repo")
        elif not (repo / "models.config").exists():
            parser.error(f"{repo} has no models.config: train models (make models) or use --tiny")
        options = Options(
            repo.resolve(),
            arguments.concurrency,
            arguments.requests,
            arguments.workers,
            arguments.worker_class,
            paths,
            arguments.profile_dir,
            arguments.profile_seconds,
            arguments.log_level,
        )
        run(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
