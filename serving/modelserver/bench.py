"""Benchmark the local model server: gRPC Predict throughput and p50/p99 latency.

Runs 1, 8 and 32 concurrent clients against one model, with server-side batching off and
on, and prints a table. Not a test: figures depend on the machine.

    PYTHONPATH=. python -m serving.modelserver.bench [--repo model_repo] [--model qa]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from serving import contract
from serving.modelserver.launcher import (
    configured_models,
    launch,
    server_command,
    wait_until_available,
)
from serving.modelserver.tensor_proto import decode_input
from serving.processes import stop_process

BATCHING_PARAMETERS = """max_batch_size { value: 32 }
batch_timeout_micros { value: 0 }
max_enqueued_batches { value: 64 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: true
"""


@dataclass(frozen=True)
class Point:
    """One measured configuration."""

    batching: bool
    clients: int
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        """Latency percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sample_request(repo: Path, model: str, rows: int) -> Any:
    """A realistic request: the first warmup record of the newest version, cut to ``rows``."""
    versions = contract.version_numbers(repo / model)
    path = repo / model / str(versions[-1]) / contract.ASSETS_DIR / contract.WARMUP_FILE
    record = next(iter(tf.data.TFRecordDataset(str(path)).take(1)))
    warmup = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, proto in warmup.inputs.items():
        array = decode_input(key, proto)  # bounded, as the server reads warmup records
        repeated = np.concatenate([array] * (rows // len(array) + 1))[:rows]
        request.inputs[key].CopyFrom(tf.make_tensor_proto(repeated))
    return request


def run_clients(target: str, request: Any, clients: int, warmup: float, seconds: float) -> Point:
    """``clients`` threads send requests back to back; only the measured window counts."""
    channel = grpc.insecure_channel(target)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    start = time.perf_counter() + warmup
    stop = start + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients

    def client(index: int) -> None:
        while (now := time.perf_counter()) < stop:
            try:
                stub.Predict(request, timeout=30)
            except grpc.RpcError:
                errors[index] += 1
                continue
            if now >= start:
                latencies[index].append(time.perf_counter() - now)

    threads = [threading.Thread(target=client, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    merged = [value for values in latencies for value in values]
    return Point(False, clients, len(merged), sum(errors), seconds, merged)


def measure(
    repo: Path, model: str, batching: bool, clients: Sequence[int], args: argparse.Namespace
) -> list[Point]:
    """Start a server with or without batching and measure each client count."""
    with tempfile.TemporaryDirectory() as workdir:
        parameters = Path(workdir) / "batching_parameters.txt"
        parameters.write_text(
            args.batching_parameters.read_text()
            if args.batching_parameters
            else BATCHING_PARAMETERS
        )
        command = server_command(repo, batching=batching, batching_parameters_file=parameters)
        server = launch(command)
        try:
            wait_until_available(server.rest_url, configured_models(repo))
            request = sample_request(repo, model, args.rows)
            points = []
            for count in clients:
                point = run_clients(server.grpc_target, request, count, args.warmup, args.seconds)
                points.append(_with_batching(point, batching))
            return points
        finally:
            stop_process(server.process)
            server.stderr_path.unlink(missing_ok=True)


def _with_batching(point: Point, batching: bool) -> Point:
    return Point(
        batching, point.clients, point.requests, point.errors, point.seconds, point.latencies
    )


def print_table(points: Sequence[Point]) -> None:
    """The results as a plain-text table, plus the 32-vs-1 client speed-up with batching."""
    print(f"{'batching':>8} {'clients':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for point in points:
        print(
            f"{'on' if point.batching else 'off':>8} {point.clients:>7} {point.throughput:>9.1f} "
            f"{point.percentile(0.5):>8.2f} {point.percentile(0.99):>8.2f} {point.errors:>6}"
        )
    batched = {point.clients: point.throughput for point in points if point.batching}
    if 1 in batched and batched[1] > 0:
        for clients, throughput in sorted(batched.items()):
            print(f"batching on: {clients} clients = {throughput / batched[1]:.2f}x single-client")
    print(f"median of all p50s: {statistics.median(p.percentile(0.5) for p in points):.2f} ms")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, build a tiny repo if none is given, run the matrix, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repo", type=Path, help="model_repo to serve (default: tiny models)")
    parser.add_argument("--model", default="qa")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured time per point")
    parser.add_argument("--batching_parameters", type=Path, help="BatchingParameters file")
    parser.add_argument("--modes", default="off,on", help="batching modes to run")
    args = parser.parse_args(argv)
    clients = [int(value) for value in args.clients.split(",")]
    repo = args.repo
    if repo is None:
        from training.tiny import build_tiny_repo  # only needed without --repo (trains Keras)

        repo = build_tiny_repo(Path(tempfile.mkdtemp(prefix="bench-repo-")))
    points: list[Point] = []
    for mode in args.modes.split(","):
        points += measure(repo.resolve(), args.model, mode == "on", clients, args)
    print_table(points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
