"""Measurement (not a test): do slow clients starve normal requests? (slowloris)

Starts the local model server and the gateway (gunicorn, the shipped worker class unless
``--worker-class`` says otherwise) over a model repo, then times sequential normal
``POST /v1/qa`` requests twice: alone, and while ``--slow`` connections each send a partial
request and then one byte every ``--drip-seconds``. Prints p50/p99 and failures of both runs
and their p99 ratio (goal: 50 slow connections keep the p99 within 2x).

    PYTHONPATH=. python -m loadtests.slow_clients --tiny --slow 50
    PYTHONPATH=. python -m loadtests.slow_clients --model-repo model_repo --worker-class gthread
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

from loadtests.step_options import positive_seconds
from serving.gateway.launcher import running_gateway
from serving.modelserver.launcher import running, server_command

QA_BODY = {
    "article": "Mary moved to the bathroom. John went to the hallway.",
    "question": "Where is Mary?",
}
HEADERS = (
    b"POST /v1/qa HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n"
)
# "headers": the header block never ends; "body": headers complete, the body trickles in.
PARTIAL_REQUESTS = {"headers": (HEADERS, b"X"), "body": (HEADERS + b"\r\n{", b" ")}


def timed_requests(url: str, count: int, timeout: float) -> tuple[list[float], int]:
    """Latencies (ms) of ``count`` sequential qa requests, and how many failed or timed out."""
    latencies, failures = [], 0
    with requests.Session() as session:
        for _ in range(count):
            start = time.perf_counter()
            try:
                response = session.post(f"{url}/v1/qa", json=QA_BODY, timeout=timeout)
                if response.status_code != 200:
                    failures += 1
                    continue
            except requests.RequestException:
                failures += 1
                continue
            latencies.append((time.perf_counter() - start) * 1000)
    return latencies, failures


@contextmanager
def slow_connections(url: str, count: int, drip_seconds: float, mode: str) -> Iterator[None]:
    """``count`` connections that send a partial request, then one more byte per drip."""
    start, byte = PARTIAL_REQUESTS[mode]
    host, port = url.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    stop = threading.Event()
    for _ in range(count):
        connection = socket.create_connection((host, int(port)), timeout=5)
        connection.sendall(start)
        sockets.append(connection)

    def drip() -> None:
        while not stop.wait(drip_seconds):
            for connection in sockets:
                # A connection the server closed is a fine defence too.
                with contextlib.suppress(OSError):
                    connection.sendall(byte)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        time.sleep(drip_seconds * 1.5)  # let them occupy whatever they can
        yield
    finally:
        stop.set()
        thread.join(timeout=drip_seconds + 1)
        for connection in sockets:
            connection.close()


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of the sorted values (nearest rank); NaN if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def describe(name: str, latencies: list[float], failures: int) -> str:
    """One report line."""
    median = statistics.median(latencies) if latencies else float("nan")
    return (
        f"{name:<22} ok={len(latencies):4d} failed={failures:3d} "
        f"p50={median:8.1f} ms p99={percentile(latencies, 0.99):8.1f} ms"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the two measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tiny", action="store_true", help="export tiny test models first")
    source.add_argument("--model-repo", type=Path)
    parser.add_argument("--slow", type=int, default=50, help="slow connections")
    parser.add_argument("--requests", type=int, default=200, help="normal requests per run")
    parser.add_argument("--drip-seconds", type=positive_seconds, default=2.0)
    parser.add_argument(
        "--timeout", type=positive_seconds, default=10.0, help="normal request timeout"
    )
    parser.add_argument("--mode", choices=sorted(PARTIAL_REQUESTS), default="body")
    parser.add_argument("--worker-class", default="", help="override GATEWAY_WORKER_CLASS")
    args = parser.parse_args(argv)
    if args.slow < 0 or args.requests < 1:
        parser.error("--slow >= 0, --requests >= 1")
    repo = args.model_repo
    if args.tiny:
        from training.tiny import build_tiny_repo

        repo = build_tiny_repo(Path(tempfile.mkdtemp(prefix="slow-clients-repo-")))
    with running(repo, server_command(repo)) as launched:
        env = {"GATEWAY_GRPC_TARGET": launched.grpc_target, "GATEWAY_MODEL_REPO": str(repo)}
        if args.worker_class:
            env["GATEWAY_WORKER_CLASS"] = args.worker_class
        with running_gateway(env, ready_path="/readyz") as gateway:
            timed_requests(gateway.url, 20, args.timeout)  # warm every worker
            alone = timed_requests(gateway.url, args.requests, args.timeout)
            with slow_connections(gateway.url, args.slow, args.drip_seconds, args.mode):
                loaded = timed_requests(gateway.url, args.requests, args.timeout)
    print(describe("alone", *alone))
    print(describe(f"with {args.slow} slow ({args.mode})", *loaded))
    ratio = percentile(loaded[0], 0.99) / percentile(alone[0], 0.99)
    print(f"p99 ratio: {ratio:.2f} (goal <= 2.0); failures with slow clients: {loaded[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
