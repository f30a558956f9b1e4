"""Smoke run of ``make bench``'s mixed cells: tiny models, real servers, a few requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_bench_mixed_cells_write_every_figure(tiny_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    command = [
        sys.executable,
        "-m",
        "loadtests.bench_gateway",
        "--model-repo",
        str(tiny_repo),
        "--endpoints",
        "mixed",
        "--only",
        "gateway",
        "grpc",
        "--concurrency",
        "2",
        "--requests",
        "20",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    environment = os.environ | {"PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, cwd=ROOT, env=environment, timeout=240, check=False)
    assert run.returncode == 0
    assert (out / "bench.png").stat().st_size > 0
    report = json.loads((out / "bench.json").read_text())
    assert report["settings"]["batching"] is True
    rows = {row["path"]: row for row in report["rows"]}
    assert set(rows) == {"gateway", "grpc"}
    for row in rows.values():
        assert (row["endpoint"], row["clients"], row["requests"], row["failures"]) == (
            "mixed",
            2,
            20,
            0,
        )
        assert row["per_second"] > 0 and row["p50_ms"] <= row["p99_ms"]
    assert rows["gateway"]["backend_rss_mb"] > 0  # the model server behind the gateway
