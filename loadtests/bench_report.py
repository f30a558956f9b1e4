"""The benchmark's outputs: a printed table, ``bench.json`` (every cell) and ``bench.png``.

``bench.json``: ``{"title", "started", "load_at_start", "settings", "rows": [...]}`` with one
row per cell: ``endpoint`` (``qa``, ``profile``, ``similarity`` or ``mixed``), ``clients``,
``path`` and the :class:`loadtests.bench_cells.Figures` fields (ms, requests/s, MB).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from loadtests.bench_cells import Figures

Row = dict[str, Any]
HEADER = (
    f"{'endpoint':<11}{'conc':>5} {'path':<12}{'p50':>8}{'p95':>8}{'p99':>8}"
    f"{'req/s':>8}{'cpu ms':>8}{'be ms':>7}{'cli ms':>7}{'RSS MB':>8}{'be RSS':>7}{'fail':>5}  load"
)


def make_row(endpoint: str, clients: int, path: str, figures: Figures) -> Row:
    """One cell as a JSON-ready dict."""
    return {"endpoint": endpoint, "clients": clients, "path": path, **asdict(figures)}


def format_row(row: Row) -> str:
    """One table line under :data:`HEADER`."""
    return (
        f"{row['endpoint']:<11}{row['clients']:>5} {row['path']:<12}{row['p50_ms']:>8.2f}"
        f"{row['p95_ms']:>8.2f}{row['p99_ms']:>8.2f}{row['per_second']:>8.1f}"
        f"{row['cpu_ms']:>8.2f}{row['backend_cpu_ms']:>7.2f}{row['client_cpu_ms']:>7.2f}"
        f"{row['rss_mb']:>8.1f}{row['backend_rss_mb']:>7.0f}{row['failures']:>5}  {row['load']}"
    )


def ratios(rows: list[Row], path: str = "gateway", baseline: str = "inproc-http") -> list[str]:
    """Lines comparing ``path`` with ``baseline`` in the same cell: req/s and p99 ratios."""
    cells = {(row["endpoint"], row["clients"], row["path"]): row for row in rows}
    lines = []
    for (endpoint, clients, name), row in cells.items():
        other = cells.get((endpoint, clients, baseline))
        if name != path or other is None:
            continue
        lines.append(
            f"{endpoint:<11}{clients:>5}  {path}/{baseline}: req/s x"
            f"{row['per_second'] / other['per_second']:.2f}, p99 x"
            f"{row['p99_ms'] / other['p99_ms']:.2f}, p50 {row['p50_ms'] - other['p50_ms']:+.2f} ms"
        )
    return lines


def write_json(path: Path, rows: list[Row], **meta: Any) -> Path:
    """Write ``{**meta, "rows": rows}``."""
    path.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    return path


def plot_rows(rows: list[Row], path: Path, title: str = "") -> Path:
    """A PNG with one column per endpoint: req/s, p50 (solid) and p99 (dotted) latency, and
    CPU ms per request (solid: the serving processes; dashed: the model server behind them),
    each against the number of clients, one colour per path."""
    endpoints = list(dict.fromkeys(row["endpoint"] for row in rows))
    paths = list(dict.fromkeys(row["path"] for row in rows))
    figure = Figure(figsize=(4 * len(endpoints), 10))
    axes = figure.subplots(3, len(endpoints), squeeze=False)
    for column, endpoint in enumerate(endpoints):
        throughput, latency, cpu = axes[0][column], axes[1][column], axes[2][column]
        for index, name in enumerate(paths):
            mine = sorted(
                (row for row in rows if row["endpoint"] == endpoint and row["path"] == name),
                key=lambda row: int(row["clients"]),
            )
            if not mine:
                continue
            style = {"color": f"C{index % 10}"}
            _plot(throughput, mine, "per_second", "o-", label=name, **style)
            _plot(latency, mine, "p50_ms", "o-", label=name, **style)
            _plot(latency, mine, "p99_ms", "o:", **style)
            _plot(cpu, mine, "cpu_ms", "o-", label=name, **style)
            if any(row["backend_cpu_ms"] for row in mine):
                _plot(cpu, mine, "backend_cpu_ms", "o--", **style)
        throughput.set(title=endpoint, ylabel="requests/s")
        latency.set(ylabel="latency ms (p50 solid, p99 dotted)", yscale="log")
        cpu.set(ylabel="CPU ms/request (model server dashed)", xlabel="clients")
        for axis in (throughput, latency, cpu):
            axis.set_xscale("symlog", base=2, linthresh=1)
            axis.set_xticks(sorted({row["clients"] for row in rows}))
            axis.grid(True, alpha=0.3)
        throughput.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _plot(axis: Any, rows: list[Row], key: str, style: str, **keywords: Any) -> None:
    axis.plot([row["clients"] for row in rows], [row[key] for row in rows], style, **keywords)
