"""Plot latency percentiles and throughput against concurrency from a run's summary JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# The object API (no pyplot) draws with Agg into files: no display, no global figure state.
from matplotlib.figure import Figure

PERCENTILE_STYLES = {"p50_ms": "-", "p95_ms": "--", "p99_ms": ":"}


def series(summary: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    """Per request name: users, the percentiles and requests/s, one value per step."""
    by_name: dict[str, dict[str, list[float]]] = {}
    for step in summary["steps"]:
        for name, result in step["endpoints"].items():
            columns = by_name.setdefault(name, {"users": [], "rps": []})
            columns["users"].append(step["users"])
            columns["rps"].append(result["rps"])
            for key in PERCENTILE_STYLES:
                columns.setdefault(key, []).append(result[key])
    return by_name


def plot_summary(summary: dict[str, Any], path: Path, title: str = "") -> Path:
    """Write a two-panel PNG: latency percentiles (log scale) and throughput per endpoint."""
    figure = Figure(figsize=(13, 5))
    latency, throughput = figure.subplots(1, 2)
    for index, (name, columns) in enumerate(sorted(series(summary).items())):
        color = f"C{index % 10}"
        for key, style in PERCENTILE_STYLES.items():
            label = name if key == "p50_ms" else None  # one legend entry per request name
            latency.plot(
                columns["users"], columns[key], style, color=color, marker="o", label=label
            )
        throughput.plot(columns["users"], columns["rps"], "-", color=color, marker="o", label=name)
    latency.set(xlabel="concurrent users", ylabel="latency (ms)", yscale="log")
    latency.set_title("latency percentiles (solid p50, dashed p95, dotted p99)")
    throughput.set(xlabel="concurrent users", ylabel="requests/s")
    throughput.set_title("throughput")
    users = sorted({step["users"] for step in summary["steps"]})
    for axes in (latency, throughput):
        axes.set_xscale("symlog", base=2, linthresh=1)
        axes.set_xticks(users, [str(count) for count in users])
        axes.grid(True, which="both", alpha=0.3)
    latency.legend(fontsize="small")
    throughput.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def plot_file(summary_path: Path, png_path: Path) -> Path:
    """Plot a summary JSON file into a PNG file."""
    summary = json.loads(summary_path.read_text())
    return plot_summary(summary, png_path, title=str(summary.get("title", "")))
