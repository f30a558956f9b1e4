"""Benchmark (not a test): the gateway vs direct gRPC vs the in-process model, per endpoint.

Prints, for each endpoint at each concurrency: p50/p99 latency and throughput through the
gateway (gunicorn, gRPC backend), a direct gRPC Predict with the same tensors, and the
SavedModel called in this process; plus a gateway worker's RSS and the start-up time.

    PYTHONPATH=. python -m loadtests.bench_gateway --tiny
    PYTHONPATH=. python -m loadtests.bench_gateway --model-repo model_repo --requests 400
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from serving.encoding import Tensors
from serving.gateway.aliases import prepare_alias
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.backends.grpc_backend import GrpcBackend
from serving.gateway.launcher import RunningGateway, running_gateway
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


@dataclass(frozen=True)
class Figures:
    """Latency percentiles in milliseconds and throughput in requests per second."""

    p50_ms: float
    p99_ms: float
    per_second: float


def measure(call: Callable[[], None], concurrency: int, total: int) -> Figures:
    """Run ``total`` calls spread over ``concurrency`` threads; time each call."""
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

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Figures(statistics.median(ordered) * 1000, p99 * 1000, len(ordered) / elapsed)


def gateway_call(url: str, endpoint: str) -> Callable[[], None]:
    """POST the endpoint's payload over a keep-alive connection per thread.

    The standard library client costs far less per call than ``requests``, so the figures
    show the gateway's overhead rather than the benchmark client's.
    """
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


def worker_rss_mb(gateway: RunningGateway) -> list[float]:
    """Resident memory of each gunicorn worker, in MB (from /proc)."""
    sizes = []
    for pid in gateway.worker_pids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


@contextmanager
def model_server(repo: Path) -> Iterator[str]:
    """The local model server for repo; yields its gRPC target."""
    server = launch(server_command(repo))
    try:
        wait_until_available(server.rest_url, configured_models(repo), timeout=120)
        yield server.grpc_target
    finally:
        stop_process(server.process)


def run(
    repo: Path, concurrencies: list[int], total: int, workers: int, threads: int, worker_class: str
) -> None:
    """Measure everything and print a table."""
    from serving.gateway.backends.local_backend import LocalBackend  # imports TensorFlow

    in_process = LocalBackend(repo)
    with model_server(repo) as target:
        environment = {
            "GATEWAY_BACKEND": "grpc",
            "GATEWAY_GRPC_TARGET": target,
            "GATEWAY_MODEL_REPO": str(repo),
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_WORKER_CLASS": worker_class,
        }
        with running_gateway(environment, workers=workers, threads=threads) as gateway:
            first = time.perf_counter()
            gateway_call(gateway.url, "qa")()
            first_answer = time.perf_counter() - first
            direct = GrpcBackend(target)
            print(
                f"{'endpoint':<11}{'conc':>5} | {'path':<11}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}"
            )
            for endpoint in PAYLOADS:
                version = requests.post(
                    f"{gateway.url}/v1/{endpoint}", json=PAYLOADS[endpoint], timeout=30
                ).json()["model"]["version"]
                runtime = load_runtime(repo, endpoint, version, GatewaySettings(model_repo=repo))
                tensors = tensors_for(runtime, endpoint)
                calls = {
                    "gateway": gateway_call(gateway.url, endpoint),
                    "grpc": backend_call(direct, endpoint, version, tensors),
                    "in-process": backend_call(in_process, endpoint, version, tensors),
                }
                for concurrency in concurrencies:
                    for name, call in calls.items():
                        for _ in range(20):  # warm connections, caches and TF graphs
                            call()
                        figures = measure(call, concurrency, total)
                        print(
                            f"{endpoint:<11}{concurrency:>5} | {name:<11}{figures.p50_ms:>9.2f}"
                            f"{figures.p99_ms:>9.2f}{figures.per_second:>9.1f}"
                        )
            rss = worker_rss_mb(gateway)
            sizes = ", ".join(f"{size:.1f}" for size in rss)
            print(f"gateway: {workers} {worker_class} workers x {threads} threads; RSS MB: {sizes}")
            print(
                f"start-up: gunicorn spawn -> /healthz {gateway.startup_seconds:.2f} s; "
                f"first answer {first_answer * 1000:.1f} ms"
            )
            direct.close()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--tiny", action="store_true", help="build tiny models in a temp dir")
    parser.add_argument("--requests", type=int, default=200, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        repo = arguments.model_repo
        if arguments.tiny:
            from training.tiny import build_tiny_repo

            repo = build_tiny_repo(Path(scratch) / "model_repo")
        elif not (repo / "models.config").exists():
            parser.error(f"{repo} has no models.config: train models (make models) or use --tiny")
        run(
            repo.resolve(),
            arguments.concurrency,
            arguments.requests,
            arguments.workers,
            arguments.threads,
            arguments.worker_class,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
