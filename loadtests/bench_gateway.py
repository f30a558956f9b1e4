"""Benchmark (not a test): the gateway vs an in-process HTTP server vs direct calls.

For each endpoint (qa, profile, similarity, and ``mixed``: issue 9's 5 qa : 3 similarity :
2 profile single requests from ``loadtests/data``) at each concurrency (1, 8, 32 clients) it
prints p50/p95/p99 latency, requests/s, the CPU milliseconds per request of the serving
processes (``utime + stime`` from ``/proc/<pid>/stat`` before/after the cell, divided by the
requests answered), of the model server behind them and of this load generator, their RSS
and the machine's load average; then the gateway/baseline ratios, and it writes
``bench.json`` (every cell) and ``bench.png`` into ``--out``:

- ``gateway``: gunicorn (``--worker-class``, default gevent) with the gRPC backend; CPU is the
  gateway workers' only, the local model server's is the ``be ms`` column. The model server
  batches as shipped (``--enable_batching`` with the repo's ``batching_parameters.txt``, as
  ``scripts/run_local.sh``) unless ``--no-batching`` or ``--batching-parameters FILE``;
- ``inproc-http``: the same API answered by one gunicorn gthread worker that runs the
  SavedModels itself (the gateway's runtime units with ``GATEWAY_BACKEND=local``): the
  baseline of issue 9;
- ``grpc``: a direct ``Predict`` with the same tensors (CPU: the model server's);
- ``in-process``: the SavedModel called in this process (``--direct`` only).

``--profile-dir`` records each endpoint's gateway cell at the highest concurrency with py-spy.

    PYTHONPATH=. python -m loadtests.bench_gateway --tiny
    PYTHONPATH=. python -m loadtests.bench_gateway --model-repo model_repo --endpoints mixed
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from loadtests import bench_report, procstat, profiling
from loadtests.bench_cells import NO_PIDS, Pids, Workload, measure, served_versions
from loadtests.bench_servers import (
    ENDPOINTS,
    Options,
    model_server,
    start_baseline,
    start_gateway,
)
from loadtests.mixload import PAYLOADS, STORY, mixed_requests
from serving.gateway.backends import Backend
from serving.gateway.backends.grpc_backend import GrpcBackend

__all__ = ["PAYLOADS", "STORY", "main"]
INTRA_OP_FLAG = "--tensorflow_intra_op_parallelism"
SHIPPED_INTRA_OP_THREADS = 1  # as scripts/run_local.sh (make run) and deploy/ pass it
TENSOR_CONTENT_FLAG = "--enable_serialization_as_tensor_content"  # also make run's and deploy/'s
PATHS = ("gateway", "inproc-http", "grpc", "in-process")
Cell = tuple[Callable[[], None], Pids, Pids]  # the call, server pids, backend pids


def run(options: Options) -> list[bench_report.Row]:
    """Start the servers, measure every cell, print a table; returns the rows."""
    repo = options.repo
    rows: list[bench_report.Row] = []
    with ExitStack() as stack:
        server = stack.enter_context(
            model_server(
                repo, options.batching, options.batching_parameters, options.modelserver_args
            )
        )
        target, server_pid = server.grpc_target, server.process.pid

        def backend_pids() -> list[int]:
            return [server_pid, *procstat.children(server_pid)]

        gateway = start_gateway(stack, options, server)
        urls = {"gateway": (gateway.url, gateway.worker_pids, backend_pids)}
        for name, extra in options.variants:  # the same gateway with other settings
            variant = start_gateway(stack, options, server, extra)
            urls[name] = (variant.url, variant.worker_pids, backend_pids)
        if "inproc-http" in options.paths:
            baseline = start_baseline(stack, options)
            urls["inproc-http"] = (baseline.url, baseline.worker_pids, NO_PIDS)
        direct = GrpcBackend(target)
        stack.callback(direct.close)
        backends: dict[str, tuple[Backend, Pids]] = {"grpc": (direct, backend_pids)}
        if "in-process" in options.paths:
            from serving.gateway.backends.local_backend import LocalBackend  # imports TF

            backends["in-process"] = (LocalBackend(repo), NO_PIDS)
        workload = Workload(repo, served_versions(gateway.url), mixed_requests())
        print(f"load average (1/5/15 min) at start: {procstat.load_average()}")
        print(bench_report.HEADER)
        for endpoint in options.endpoints:
            cells: dict[str, Cell] = {
                name: (workload.http(url, endpoint), server, backend)
                for name, (url, server, backend) in urls.items()
            }
            for name, (backend, pids) in backends.items():
                cells[name] = (workload.direct(backend, endpoint), pids, NO_PIDS)
            order = [*options.paths, *(name for name, _ in options.variants)]
            order += reversed(order) if options.abba else []
            for concurrency in options.concurrencies:
                for name in order:
                    profile = name in urls and concurrency == max(options.concurrencies)
                    figures = measure_cell(
                        options, endpoint, concurrency, cells[name], profile, name
                    )
                    rows.append(bench_report.make_row(endpoint, concurrency, name, figures))
                    print(bench_report.format_row(rows[-1]), flush=True)
        print(
            f"gateway: {options.workers} {options.worker_class} workers; start-up (spawn -> "
            f"/readyz) {gateway.startup_seconds:.2f} s"
        )
    print("\n".join(bench_report.ratios(rows)))
    return rows


WARMUP_CALLS = 200


def measure_cell(
    options: Options, endpoint: str, concurrency: int, cell: Cell, profile: bool, path: str = ""
) -> Any:
    """Warm up, then measure one cell (py-spy the first server process if ``profile``)."""
    call, server, backend = cell
    # Warm connections, caches and TF graphs. 20 calls left the first cell of a run reading
    # high (qa at one client 1.4-2.0 ms of gateway CPU against 1.0-1.2 in its later cells:
    # loadtests/README.md, round 8); as many calls as a cell, up to WARMUP_CALLS, do not.
    for _ in range(min(WARMUP_CALLS, options.total)):
        call()
    recorder = None
    if profile and options.profile_dir is not None:
        options.profile_dir.mkdir(parents=True, exist_ok=True)
        raw = options.profile_dir / f"{endpoint}-{path}.txt"
        if not raw.exists():  # the first run of the cell (--abba measures it twice)
            recorder = profiling.record(server()[0], options.profile_seconds, raw)
    figures = measure(call, concurrency, options.total, server, backend)
    if recorder is not None:
        recorder.wait()
    return figures


def write_outputs(options: Options, rows: list[bench_report.Row], started: str) -> None:
    """``bench.json`` and ``bench.png`` in ``options.out``."""
    if options.out is None:
        return
    options.out.mkdir(parents=True, exist_ok=True)
    settings = {
        "repo": str(options.repo),
        "requests_per_cell": options.total,
        "workers": options.workers,
        "worker_class": options.worker_class,
        "batching": options.batching,
        "batching_parameters": str(options.batching_parameters or ""),
        "modelserver_args": list(options.modelserver_args),
    }
    title = f"make bench, {started}"
    bench_report.write_json(options.out / "bench.json", rows, title=title, settings=settings)
    bench_report.plot_rows(rows, options.out / "bench.png", title)
    print(f"wrote {options.out / 'bench.json'} and {options.out / 'bench.png'}")


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(description=__doc__)
    add = parser.add_argument
    add("--model-repo", type=Path, default=Path("model_repo"))
    add("--tiny", action="store_true", help="build tiny models in a temp dir")
    add("--requests", type=int, default=400, help="calls per cell")
    add("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    add("--workers", type=int, default=2)
    add("--threads", type=int, default=4, help="gthread worker threads (GATEWAY_THREADS)")
    add("--worker-class", default="gevent", help="gunicorn worker class")
    add("--only", nargs="+", choices=PATHS, default=list(PATHS[:3]))
    add("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    add("--direct", action="store_true", help="also the in-process SavedModel")
    add("--profile-dir", type=Path, help="py-spy the gateway's busiest cells")
    add("--profile-seconds", type=int, default=8, help="py-spy sampling window")
    add("--log-level", default="INFO", help="the gateway's GATEWAY_LOG_LEVEL")
    add("--no-batching", action="store_true", help="model server without --enable_batching")
    add("--batching-parameters", type=Path, help="instead of the repo's batching_parameters.txt")
    add(
        "--modelserver-arg",
        action="append",
        default=[],
        help="extra model server flag (default: make run's --tensorflow_intra_op_parallelism=1 "
        "and --enable_serialization_as_tensor_content)",
    )
    add("--out", type=Path, help="bench.json + bench.png here (default reports/bench-<time>)")
    add(
        "--variant",
        action="append",
        default=[],
        type=parse_variant,
        metavar="NAME:KEY=VALUE,...",
        help="one more gateway with these GATEWAY_* settings (ROOT=DIR: run that source tree,"
        " PYTHON=PATH: with that interpreter),"
        " measured as path NAME",
    )
    add("--abba", action="store_true", help="measure each cell's paths twice: A B .. B A")
    return parser


def shipped_server_flags(args: Sequence[str]) -> tuple[str, ...]:
    """The model server flags ``args`` plus ``make run``'s (``scripts/run_local.sh``): its
    intra-op pool (one thread per batch thread) unless ``args`` size that pool themselves, and
    outputs as ``tensor_content`` unless ``args`` set that flag (``...=false`` to compare)."""
    shipped = (
        []
        if any(arg.startswith(f"{INTRA_OP_FLAG}=") for arg in args)
        else [f"{INTRA_OP_FLAG}={SHIPPED_INTRA_OP_THREADS}"]
    )
    if not any(arg.startswith(TENSOR_CONTENT_FLAG) for arg in args):
        shipped.append(TENSOR_CONTENT_FLAG)
    return (*shipped, *args)


def parse_variant(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``NAME:KEY=VALUE,...`` -> ``(NAME, ((KEY, VALUE), ...))``: a gateway variant's name and
    settings (``ROOT`` and ``PYTHON`` are read by ``bench_servers.start_gateway``). Raises
    ``argparse.ArgumentTypeError`` for a missing name, a path's name or a pair without ``=``."""
    name, _, pairs = text.partition(":")
    items = [pair.partition("=") for pair in pairs.split(",") if pair]
    if not name or name in PATHS or any(not key or not sep for key, sep, _ in items):
        raise argparse.ArgumentTypeError(f"expected NAME:KEY=VALUE,... not {text!r}")
    return name, tuple((key, value) for key, _, value in items)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the benchmark."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    paths = tuple(arguments.only) + (("in-process",) if arguments.direct else ())
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    out = arguments.out or Path("reports") / f"bench-{time.strftime('%Y%m%d-%H%M%S')}"
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch:
        repo = arguments.model_repo
        if arguments.tiny:
            from training.tiny import build_tiny_repo

            repo = build_tiny_repo(Path(scratch) / "model_repo")
        elif not (repo / "models.config").exists():
            parser.error(f"{repo} has no models.config: train models (make models) or use --tiny")
        options = Options(
            repo=repo.resolve(),
            concurrencies=arguments.concurrency,
            total=arguments.requests,
            workers=arguments.workers,
            worker_class=arguments.worker_class,
            paths=paths,
            profile_dir=arguments.profile_dir,
            profile_seconds=arguments.profile_seconds,
            log_level=arguments.log_level,
            endpoints=tuple(arguments.endpoints),
            batching=not arguments.no_batching,
            batching_parameters=arguments.batching_parameters,
            modelserver_args=shipped_server_flags(arguments.modelserver_arg),
            threads=arguments.threads,
            out=out,
            variants=tuple(arguments.variant),
            abba=arguments.abba,
        )
        write_outputs(options, run(options), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
