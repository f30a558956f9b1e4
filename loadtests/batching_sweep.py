"""Batching sweep (issue 9): the local model server's batching and TF thread pools, measured.

For each point (a ``batching_parameters.txt`` plus TensorFlow's intra-op/inter-op pool sizes
and the gateway's worker count) it starts the local model server and the gateway (gRPC
backend, as ``make run``), sends the mixed load (``loadtests.mixload``: 5 qa : 3 similarity :
2 profile single requests) at each client count, and prints requests/s, p50/p95/p99, the
gateway's and the model server's CPU ms per request and their RSS. The in-process HTTP
baseline (``inproc-http`` of ``make bench``) is measured with the same load at the start,
every ``--baseline-every`` points and at the end, and each point is also given as ratios to
the mean baseline of its client count. The order follows TF Serving's guide for CPUs
(``tensorflow_serving/batching/README.md``): batching off; ``batch_timeout_micros`` 0 with
``num_batch_threads`` = cores; then raise the timeout; then batch threads against TF's
intra-op threads; then ``max_batch_size``.

The repo is only read: each point's parameters file is written to a temporary folder and
passed with ``--batching_parameters_file``.

    PYTHONPATH=. python -m loadtests.batching_sweep --model-repo model_repo
    PYTHONPATH=. python -m loadtests.batching_sweep --model-repo model_repo --points off t0 t2000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from loadtests import bench_report, procstat
from loadtests.bench_cells import NO_PIDS, Pids, measure, mixed_http
from loadtests.bench_servers import Options, model_server, start_baseline, start_gateway
from loadtests.mixload import MixedRequest, mixed_requests
from loadtests.sweep_points import POINTS, Point

WARMUP_CALLS = 120


def mixed_rows(
    call: Callable[[], None],
    path: str,
    options: Options,
    clients: list[int],
    server: Pids,
    backend: Pids,
    metrics_url: str = "",
) -> list[bench_report.Row]:
    """Warm up, then one mixed cell per client count (with the model server's mean rows per
    batch per model when ``metrics_url`` is given)."""
    for _ in range(WARMUP_CALLS):  # every model's graphs, connections and batch shapes
        call()
    rows = []
    for count in clients:
        before = batch_sizes(metrics_url)
        figures = measure(call, count, options.total, server, backend)
        rows.append(bench_report.make_row("mixed", count, path, figures))
        rows[-1]["rows_per_batch"] = mean_rows(before, batch_sizes(metrics_url))
        print(bench_report.format_row(rows[-1]), rows[-1]["rows_per_batch"], flush=True)
    return rows


def batch_sizes(metrics_url: str) -> dict[str, tuple[float, float, float]]:
    """Per model: rows batched, batches and the TF calls of batches split by length so far
    (``modelserver_batch_size`` sum and count, ``modelserver_batch_calls_total``)."""
    if not metrics_url:
        return {}
    sizes: dict[str, tuple[float, float, float]] = {}
    wanted = {
        "modelserver_batch_size_sum": 0,
        "modelserver_batch_size_count": 1,
        "modelserver_batch_calls_total": 2,
    }
    for family in text_string_to_metric_families(requests.get(metrics_url, timeout=10).text):
        for sample in family.samples:
            if sample.name not in wanted:
                continue
            model = sample.labels.get("model", "")
            figures = list(sizes.get(model, (0.0, 0.0, 0.0)))
            figures[wanted[sample.name]] += sample.value
            sizes[model] = (figures[0], figures[1], figures[2])
    return sizes


def mean_rows(
    before: dict[str, tuple[float, float, float]], after: dict[str, tuple[float, float, float]]
) -> dict[str, float]:
    """Mean rows per batch per model between two :func:`batch_sizes` readings, and (as
    ``MODEL calls``) the mean TF calls per batch where batches were split by length."""
    means = {}
    for model, (total, count, calls) in after.items():
        old_total, old_count, old_calls = before.get(model, (0.0, 0.0, 0.0))
        if count > old_count:
            means[model] = round((total - old_total) / (count - old_count), 2)
            if calls > old_calls:
                means[f"{model} calls"] = round((calls - old_calls) / (count - old_count), 2)
    return means


def measure_point(
    point: Point, options: Options, clients: list[int], mix: list[MixedRequest], scratch: Path
) -> list[bench_report.Row]:
    """Start the model server and gateway for ``point`` and measure the mix at each count."""
    parameters = scratch / f"{point.name}.txt"
    parameters.write_text(point.parameters())
    with ExitStack() as stack:
        server = stack.enter_context(
            model_server(options.repo, point.batching, parameters, point.server_args())
        )
        options = replace(options, workers=point.gateway_workers)
        gateway = start_gateway(stack, options, server)

        def backend() -> list[int]:
            return [server.process.pid, *procstat.children(server.process.pid)]

        call = mixed_http(gateway.url, mix)
        workers = gateway.worker_pids
        metrics = f"{server.rest_url}/metrics"
        return mixed_rows(call, point.name, options, clients, workers, backend, metrics)


def summary_lines(rows: list[bench_report.Row], points: list[Point]) -> list[str]:
    """A markdown table: each point and client count against the mean baseline."""
    baseline: dict[int, list[bench_report.Row]] = {}
    for row in rows:
        if row["path"] == "inproc-http":
            baseline.setdefault(row["clients"], []).append(row)
    settings = {point.name: point.describe() for point in points}
    settings["inproc-http"] = "in-process HTTP baseline (1 gthread worker x 8 threads)"
    lines = [f"- `{name}`: {text}" for name, text in settings.items()]
    lines += [
        "",
        "| point | clients | req/s | x baseline | p50 ms | p99 ms | p99 x baseline "
        "| gateway CPU ms/req | model server CPU ms/req "
        "| rows/batch (TF calls/batch) qa, sim, prof | failed | load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        base = baseline[row["clients"]]
        rps = statistics.mean(item["per_second"] for item in base)
        p99 = statistics.mean(item["p99_ms"] for item in base)
        backend = f"{row['backend_cpu_ms']:.2f}" if row["path"] != "inproc-http" else "-"
        lines.append(
            f"| {row['path']} | {row['clients']} "
            f"| {row['per_second']:.1f} | {row['per_second'] / rps:.2f} | {row['p50_ms']:.1f} "
            f"| {row['p99_ms']:.0f} | {row['p99_ms'] / p99:.2f} | {row['cpu_ms']:.2f} "
            f"| {backend} | {_rows_text(row)} | {row['failures']} | {row['load']} |"
        )
    return lines


def _rows_text(row: bench_report.Row) -> str:
    sizes = row.get("rows_per_batch") or {}
    texts = []
    for model in ("qa", "similarity", "profile"):
        if model in sizes:
            calls = sizes.get(f"{model} calls")
            texts.append(f"{sizes[model]:.1f}" + (f" ({calls:.2f} calls)" if calls else ""))
    return ", ".join(texts) or "-"


def run(
    options: Options, points: list[Point], clients: list[int], every: int
) -> list[bench_report.Row]:
    """The baseline, then every point (the baseline again every ``every`` points and last)."""
    mix = mixed_requests()
    rows: list[bench_report.Row] = []
    print(f"load average at start: {procstat.load_average()}; {options.total} requests per cell")
    print(bench_report.HEADER)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sweep-") as scratch:
        baseline = start_baseline(stack, options)
        call = mixed_http(baseline.url, mix)

        def measure_baseline() -> None:
            rows.extend(
                mixed_rows(call, "inproc-http", options, clients, baseline.worker_pids, NO_PIDS)
            )

        measure_baseline()
        for index, point in enumerate(points, start=1):
            print(f"# {point.name}: {point.describe()}", flush=True)
            rows.extend(measure_point(point, options, clients, mix, Path(scratch)))
            if index % every == 0 or index == len(points):
                measure_baseline()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the sweep, print the table and write ``sweep.json``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--requests", type=int, default=600, help="calls per cell")
    names = [point.name for point in POINTS]
    parser.add_argument("--points", nargs="+", choices=names, default=names)
    parser.add_argument("--baseline-every", type=int, default=4, help="points between baselines")
    parser.add_argument("--worker-class", default="gevent", help="the gateway's worker class")
    parser.add_argument("--out", type=Path, help="sweep.json here (default reports/sweep-<time>)")
    arguments = parser.parse_args(argv)
    if not (arguments.model_repo / "models.config").exists():
        parser.error(f"{arguments.model_repo} has no models.config")
    options = Options(
        repo=arguments.model_repo.resolve(),
        concurrencies=arguments.clients,
        total=arguments.requests,
        workers=2,
        worker_class=arguments.worker_class,
        paths=("gateway",),
        profile_dir=None,
        profile_seconds=0,
        log_level="INFO",
    )
    points = [point for point in POINTS if point.name in arguments.points]
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = run(options, points, arguments.clients, arguments.baseline_every)
    table = summary_lines(rows, points)
    print("\n".join(table))
    out = arguments.out or Path("reports") / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    bench_report.write_json(
        out / "sweep.json",
        rows,
        title=f"batching sweep, {started}",
        points={point.name: point.describe() for point in points},
        requests_per_cell=options.total,
    )
    (out / "sweep.md").write_text("\n".join(table) + "\n")
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
