"""The benchmark's mixed load, report and sweep points (no servers)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import pytest

from loadtests import bench_report
from loadtests.batching_sweep import summary_lines
from loadtests.bench_cells import Figures, measure
from loadtests.mixload import WEIGHTS, endpoint_sequence, mixed_requests, rotating
from loadtests.sweep_points import POINTS, Point
from serving.modelserver.config import BatchingSettings, parse_batching_parameters


def test_mix_has_the_issue_proportions_of_single_requests() -> None:
    assert Counter(endpoint_sequence(50)) == {"qa": 25, "similarity": 15, "profile": 10}
    requests = mixed_requests(200)
    assert Counter(request.endpoint for request in requests) == {
        name: weight * 20 for name, weight in WEIGHTS.items()
    }
    for request in requests:
        assert "instances" not in request.payload
        assert json.loads(request.body) == request.payload
    assert mixed_requests(20) == mixed_requests(20)  # fixed seed: every run sends the same


def test_rotating_gives_each_thread_its_own_offset() -> None:
    pick = rotating(list(range(74)))
    firsts: list[int] = []
    threads = [threading.Thread(target=lambda: firsts.append(pick())) for _ in range(3)]
    for thread in threads:
        thread.start()
        thread.join()
    assert sorted(firsts) == [0, 2, 4]  # 74 // 37 apart
    assert [pick() for _ in range(3)] == [6, 7, 8]  # this thread: the fourth offset


def test_sweep_points_write_parameters_the_server_reads() -> None:
    point = Point("x", max_batch_size=8, batch_timeout_micros=1000, num_batch_threads=1)
    assert parse_batching_parameters(point.parameters()) == BatchingSettings(
        max_batch_size=8,
        batch_timeout_micros=1000,
        max_enqueued_batches=64,
        num_batch_threads=1,
        pad_variable_length_inputs=True,
    )
    assert len({point.name for point in POINTS}) == len(POINTS)
    assert Point("y", intra_op=1).server_args()[0] == "--tensorflow_intra_op_parallelism=1"


def test_a_failed_call_is_counted_and_the_cell_goes_on() -> None:
    calls = iter(range(10))

    def call() -> None:
        if next(calls) % 5 == 0:
            raise RuntimeError("/v1/qa: HTTP 504")

    figures = measure(call, 2, 10, list, list)
    assert (figures.requests, figures.failures) == (8, 2)

    def broken() -> None:
        raise ConnectionRefusedError

    with pytest.raises(RuntimeError, match="every call failed"):
        measure(broken, 1, 3, list, list)


def _row(path: str, clients: int, rps: float, p99: float) -> bench_report.Row:
    figures = Figures(1.0, 2.0, p99, rps, 1.5, 0.5, 100.0, load="1.0/1.0/1.0")
    return bench_report.make_row("mixed", clients, path, figures)


def test_ratios_are_against_the_mean_baseline(tmp_path: Path) -> None:
    rows = [
        _row("inproc-http", 8, 100.0, 200.0),
        _row("t0", 8, 150.0, 100.0),
        _row("inproc-http", 8, 50.0, 400.0),
    ]
    table = summary_lines(rows, [Point("t0")])
    assert "| t0 | 8 | 150.0 | 2.00 | 1.0 | 100 | 0.33 | 1.50 | 0.50 |" in table[-2]
    assert bench_report.ratios(
        [_row("gateway", 8, 150.0, 100.0), _row("inproc-http", 8, 100.0, 200.0)]
    ) == ["mixed          8  gateway/inproc-http: req/s x1.50, p99 x0.50, p50 +0.00 ms"]
    png = bench_report.plot_rows(rows, tmp_path / "bench.png")
    assert png.stat().st_size > 0


def test_the_bench_starts_the_model_server_as_make_run_unless_told() -> None:
    from loadtests.bench_gateway import (
        SHIPPED_INTRA_OP_THREADS,
        TENSOR_CONTENT_FLAG,
        shipped_server_flags,
    )

    assert shipped_server_flags(["--x=1"]) == (
        "--tensorflow_intra_op_parallelism=1",
        TENSOR_CONTENT_FLAG,
        "--x=1",
    )
    mine = ["--tensorflow_intra_op_parallelism=2", f"{TENSOR_CONTENT_FLAG}=false"]
    assert shipped_server_flags(mine) == tuple(mine)
    root = Path(__file__).resolve().parents[3]
    run_local = (root / "scripts" / "run_local.sh").read_text()
    assert f"INTRA_OP_THREADS=${{INTRA_OP_THREADS:-{SHIPPED_INTRA_OP_THREADS}}}" in run_local
    deployed = (
        "scripts/run_local.sh",
        "deploy/compose.yaml",
        "deploy/k8s/tfserving-deployment.yaml",
    )
    for shipped in deployed:
        assert TENSOR_CONTENT_FLAG in (root / shipped).read_text(), shipped


def test_the_bench_pins_gateway_workers_as_make_run() -> None:
    from loadtests.bench_servers import SHIPPED_CPU_AFFINITY

    run_local = Path(__file__).resolve().parents[3] / "scripts" / "run_local.sh"
    shipped = f"GATEWAY_CPU_AFFINITY=${{GATEWAY_CPU_AFFINITY:-{SHIPPED_CPU_AFFINITY}}}"
    assert shipped in run_local.read_text()
