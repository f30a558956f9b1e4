"""Run the headless step-load profile against a running gateway and write every report.

``python -m loadtests.run --host http://127.0.0.1:8000 [--grpc-target 127.0.0.1:8500]
[--steps 1,4,16,32,64] [--step-seconds 30] [--users MixedUser] [--out reports/loadtest-TS]``

Writes into ``--out``: locust's CSV stats (``locust_stats.csv``, ``..._history.csv``,
failures, exceptions), its HTML report (``report.html``), ``summary.json`` (per step and
request name: requests/s, p50/p95/p99, failures; gateway-minus-backend p50; SLO verdict) and
``latency.png``. Exits with locust's code: non-zero when an SLO in ``loadtests/slo.yaml`` is
broken.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.plot import plot_file
from loadtests.slo import SLO_FILE
from loadtests.step_options import (
    base_url,
    positive_seconds,
    steps_text,
    warmup_problem,
    warmup_seconds,
)

ROOT = Path(__file__).resolve().parents[1]
# The opt-in step-load locustfile; loadtests/locustfile.py is the plain one (no shape).
LOCUSTFILE = Path(__file__).with_name("stepload.py")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", type=base_url, required=True, help="gateway base URL")
    parser.add_argument("--grpc-target", default="", help="also call the model server directly")
    parser.add_argument("--model-repo", default="model_repo", help="tokenizers for gRPC calls")
    parser.add_argument(
        "--steps", type=steps_text, default="1,4,16,32,64", help="users per step and class"
    )
    parser.add_argument("--step-seconds", type=positive_seconds, default=30.0)
    parser.add_argument("--step-warmup", type=warmup_seconds, default=3.0)
    parser.add_argument("--users", default="", help="user classes (default MixedUser[,probe])")
    parser.add_argument("--slo-file", type=Path, default=SLO_FILE)
    parser.add_argument("--out", type=Path, default=None, help="report folder")
    args = parser.parse_args(argv)
    problem = warmup_problem(args.step_seconds, args.step_warmup)
    if problem:
        parser.error(problem)
    return args


def user_classes(args: argparse.Namespace) -> list[str]:
    """The user classes to run: given ones, or the mix plus a gRPC probe when possible."""
    if args.users:
        return [name.strip() for name in args.users.split(",") if name.strip()]
    return ["MixedUser", "GrpcProbeUser"] if args.grpc_target else ["MixedUser"]


def locust_command(args: argparse.Namespace, out: Path) -> list[str]:
    """The headless locust command line for a run."""
    return [
        sys.executable,
        "-m",
        "locust",
        "--locustfile",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        args.host,
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "report.html"),
        "--steps",
        args.steps,
        "--step-seconds",
        str(args.step_seconds),
        "--step-warmup",
        str(args.step_warmup),
        "--grpc-target",
        args.grpc_target,
        "--model-repo",
        str(args.model_repo),
        "--slo-file",
        str(args.slo_file),
        "--summary-file",
        str(out / "summary.json"),
        *user_classes(args),
    ]


def git_commit() -> str:
    """The current commit (with ``-dirty`` for local changes), or ``unknown``."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return described.stdout.strip()


def print_table(summary: dict[str, Any]) -> None:
    """A readable table of the per-step figures."""
    print(f"{'users':>5} {'request':<28} {'req/s':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'fail':>5}")
    for step in summary["steps"]:
        for name, row in step["endpoints"].items():
            print(
                f"{step['users']:>5} {name:<28} {row['rps']:>8.1f} {row['p50_ms']:>8.1f} "
                f"{row['p95_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['failures']:>5}"
            )
    for row in summary.get("gateway_minus_backend_p50_ms", []):
        print(f"gateway - backend p50 at {row['users']} users, {row['model']}: ", end="")
        print(f"{row['difference_ms']} ms")
    print("SLOs:", "met" if summary["slo"]["passed"] else summary["slo"]["violations"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run locust, then annotate the summary, plot it and return locust's exit code."""
    args = parse_args(argv)
    out = args.out or Path("reports") / time.strftime("loadtest-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    environment = os.environ | {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    }
    summary_path = out / "summary.json"
    # A summary left by an earlier run into the same --out was read as this run's when locust
    # failed before writing one (an unknown user class): its figures and SLOs were printed.
    summary_path.unlink(missing_ok=True)
    code = subprocess.run(locust_command(args, out), env=environment, check=False).returncode
    if not summary_path.exists():
        print(f"locust wrote no summary (exit code {code})", file=sys.stderr)
        return code or 1
    summary = json.loads(summary_path.read_text())
    summary["commit"] = git_commit()
    summary["title"] = f"{args.host} {'+'.join(user_classes(args))} @ {summary['commit']}"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    plot_file(summary_path, out / "latency.png")
    print_table(summary)
    print(f"reports in {out}/ (report.html, locust_stats.csv, summary.json, latency.png)")
    return code


if __name__ == "__main__":
    sys.exit(main())
