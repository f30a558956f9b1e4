"""One benchmark cell: N calls from C client threads, timed, with the servers' CPU and RSS.

Shared by ``loadtests.bench_gateway`` (``make bench``) and ``loadtests.batching_sweep``.
Clients are threads with one keep-alive ``http.client`` connection (or one gRPC stub) each and
prepared bodies, so the load generator costs little CPU; its own CPU per request is reported
(``client_cpu_ms``) so a reader can check that.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from loadtests import procstat
from loadtests.mixload import PAYLOADS, MixedRequest, rotating
from serving.gateway.aliases import prepare_alias
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings

Pids = Callable[[], list[int]]
NO_PIDS: Pids = list


@dataclass(frozen=True)
class Figures:
    """One cell: latency percentiles (ms), throughput (requests/s), CPU ms per request of the
    serving processes (``cpu_ms``) and of the model server behind them (``backend_cpu_ms``), of
    this load generator (``client_cpu_ms``), their RSS (MB), and the load average after."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_second: float
    cpu_ms: float
    backend_cpu_ms: float
    rss_mb: float
    backend_rss_mb: float = 0.0
    client_cpu_ms: float = 0.0
    requests: int = 0
    load: str = ""
    failures: int = 0


def percentile(ordered: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def measure(
    call: Callable[[], None], concurrency: int, total: int, server: Pids, backend: Pids
) -> Figures:
    """Run ``total`` calls over ``concurrency`` threads; time each, and count server CPU.

    A call that raises (an HTTP error status, a gRPC error) is a failure: counted, not timed,
    and the cell goes on (a configuration that overloads the server shows as failures). A
    call with a ``close`` method (:class:`HttpCall`) is closed once the threads are done.
    """
    per_thread = max(1, total // concurrency)
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        mine = []
        for _ in range(per_thread):
            start = time.perf_counter()
            try:
                call()
            except Exception as error:  # every failure is counted, none hidden
                with lock:
                    failures.append(error)
                continue
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    server_pids, backend_pids = server(), backend()
    cpu_before = procstat.cpu_seconds(server_pids), procstat.cpu_seconds(backend_pids)
    client_before = time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    elapsed = time.perf_counter() - start
    close = getattr(call, "close", None)
    if close is not None:  # the threads that held its connections are gone
        close()
    client_cpu = time.process_time() - client_before
    cpu_after = procstat.cpu_seconds(server_pids), procstat.cpu_seconds(backend_pids)
    answered = len(latencies)
    if not answered:
        raise RuntimeError(f"every call failed; the first: {failures[0]!r}")
    ordered = sorted(latencies)
    return Figures(
        p50_ms=percentile(ordered, 0.5) * 1000,
        p95_ms=percentile(ordered, 0.95) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000,
        per_second=answered / elapsed,
        cpu_ms=(cpu_after[0] - cpu_before[0]) * 1000 / answered,
        backend_cpu_ms=(cpu_after[1] - cpu_before[1]) * 1000 / answered,
        rss_mb=sum(procstat.rss_mb(pid) for pid in server_pids),
        backend_rss_mb=sum(procstat.rss_mb(pid) for pid in backend_pids),
        client_cpu_ms=client_cpu * 1000 / answered,
        requests=answered,
        load=procstat.load_average(),
        failures=len(failures),
    )


class HttpCall:
    """POST ``next_request()``'s (path, body) over a keep-alive connection per thread; a call
    of :func:`measure`, which closes the connections once its threads are done (:meth:`close`:
    they were left to the garbage collector, "ResourceWarning: unclosed <socket ...>")."""

    def __init__(self, url: str, next_request: Callable[[], tuple[str, bytes]]) -> None:
        self._local = threading.local()
        self._address = urlsplit(url)
        self._next_request = next_request
        self._headers = {"Content-Type": "application/json"}
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _send(self, path: str, body: bytes) -> http.client.HTTPResponse:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self._address.netloc, timeout=60)
            with self._lock:
                self._opened.append(connection)
            self._local.connection = connection
        connection.request("POST", path, body, self._headers)
        return connection.getresponse()

    def __call__(self) -> None:
        path, body = self._next_request()
        try:
            response = self._send(path, body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # gunicorn closes a keep-alive connection idle for `keepalive` seconds, as
            # between two measurements: open a new one, as any HTTP client would.
            self._local.connection.close()
            del self._local.connection
            response = self._send(path, body)
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}")

    def close(self) -> None:
        """Close every connection opened so far (a later call opens its thread's anew)."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()
        self._local = threading.local()


def fixed_http(url: str, endpoint: str, body: bytes) -> Callable[[], None]:
    """The same body to ``/v1/<endpoint>`` on every call."""
    path = f"/v1/{endpoint}"
    return HttpCall(url, lambda: (path, body))


def mixed_http(url: str, requests: Sequence[MixedRequest]) -> Callable[[], None]:
    """The prepared mixed requests, in order from each thread's own offset."""
    pick = rotating(requests)

    def next_request() -> tuple[str, bytes]:
        request = pick()
        return f"/v1/{request.endpoint}", request.body

    return HttpCall(url, next_request)


def backend_call(
    backend: Backend, versions: dict[str, int], next_tensors: Callable[[], tuple[str, Any]]
) -> Callable[[], None]:
    """One Predict of ``next_tensors()``'s (model, tensors), pinned to the model's version."""
    selectors = {model: VersionSelector(version=version) for model, version in versions.items()}

    def call() -> None:
        model, tensors = next_tensors()
        backend.predict(model, selectors[model], tensors)

    return call


def served_versions(url: str) -> dict[str, int]:
    """The version the gateway answers each alias endpoint with."""
    return {
        endpoint: int(
            requests.post(f"{url}/v1/{endpoint}", json=body, timeout=60).json()["model"]["version"]
        )
        for endpoint, body in PAYLOADS.items()
    }


def tensors_for(runtime: ModelRuntime, payload: dict[str, Any]) -> Any:
    """The exact tensors the gateway sends for a payload."""
    return runtime.preprocess(prepare_alias(runtime, payload).instances)


class Workload:
    """The calls of every cell: fixed bodies per endpoint, and the prepared mix."""

    def __init__(self, repo: Path, versions: dict[str, int], mix: list[MixedRequest]) -> None:
        settings = GatewaySettings(model_repo=repo)
        self.versions = versions
        self.runtimes = {
            name: load_runtime(repo, name, version, settings) for name, version in versions.items()
        }
        self.mix = mix
        self._mixed_tensors = [
            (request.endpoint, tensors_for(self.runtimes[request.endpoint], request.payload))
            for request in mix
        ]

    def http(self, url: str, endpoint: str) -> Callable[[], None]:
        """HTTP calls of an endpoint's cell (``mixed``: the prepared mix)."""
        if endpoint == "mixed":
            return mixed_http(url, self.mix)
        return fixed_http(url, endpoint, json.dumps(PAYLOADS[endpoint]).encode())

    def direct(self, backend: Backend, endpoint: str) -> Callable[[], None]:
        """Predict calls of an endpoint's cell with the tensors the gateway would send."""
        if endpoint == "mixed":
            return backend_call(backend, self.versions, rotating(self._mixed_tensors))
        item = (endpoint, tensors_for(self.runtimes[endpoint], PAYLOADS[endpoint]))
        return backend_call(backend, self.versions, lambda: item)
