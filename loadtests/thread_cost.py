"""CPU per request of gateway variants, split by thread (benchmarks only).

Starts the local model server (batching, one intra-op thread, as ``make bench``) and one
gateway per variant (``NAME:KEY=VALUE,...`` settings as ``make bench --variant``; ``ROOT=DIR``
runs another source tree, ``PYTHON=PATH`` another interpreter, ``SERVER_ARGS=FLAG;FLAG`` its
own model server with these flags besides ``make run``'s, such as
``--enable_serialization_as_tensor_content=false``), then sends one endpoint's requests from
``--clients`` threads in alternating rounds (A B .. then .. B A) and prints, per variant, the
workers' CPU ms per request split by thread name: ``main`` (the event loop: HTTP, the app),
``python`` (threads Python started: the gevent worker's gRPC call waits,
``serving/gateway/grpc_gevent.py``), ``event_engine`` (grpcio's own threads); then the model
server's split over the whole run, and the share of the workers' CPU spent in the kernel
(``stime``: system calls, thread wake-ups, loopback TCP). On-CPU time comes from
``/proc/<pid>/task/*/schedstat`` (nanoseconds; ``procstat``), so a round of 2,000 requests
reads to the microsecond; what moves the figures is the shared machine, hence the alternation
and several rounds::

    PYTHONPATH=. python -m loadtests.thread_cost --model-repo model_repo --endpoint qa \\
        --clients 8 --requests 2000 --rounds 4 before:ROOT=../before-tree after:
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from loadtests import procstat
from loadtests.bench_cells import fixed_http, measure
from loadtests.bench_gateway import parse_variant, shipped_server_flags
from loadtests.bench_servers import Options, model_server, start_gateway
from loadtests.mixload import PAYLOADS
from serving.modelserver.launcher import LaunchedServer

WARMUP_CALLS = 300


@dataclass
class Tally:
    """One variant's rounds: CPU ms per request per thread name, and the cells' figures."""

    threads: list[dict[str, float]] = field(default_factory=list)
    per_second: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    system_share: list[float] = field(default_factory=list)  # kernel / all CPU, per round

    def line(self, name: str) -> str:
        """``name``: mean total and per-thread ms per request, rounds' totals, req/s, p50/p99."""
        totals = [sum(split.values()) for split in self.threads]
        names = sorted({key for split in self.threads for key in split})
        means = {
            key: statistics.fmean(split.get(key, 0.0) for split in self.threads) for key in names
        }
        shown = ", ".join(f"{key} {value:.3f}" for key, value in means.items() if value >= 0.001)
        if self.system_share:
            shown += f"; in the kernel {100 * statistics.fmean(self.system_share):.0f}%"
        return (
            f"{name}: {statistics.fmean(totals):.3f} ms CPU/request ({shown}); rounds "
            f"{' '.join(f'{total:.3f}' for total in totals)}; "
            f"{statistics.fmean(self.per_second):.0f} req/s, p50 "
            f"{statistics.fmean(self.p50_ms):.2f} ms, p99 {statistics.fmean(self.p99_ms):.1f} ms"
        )


def split_text(split: dict[str, float]) -> str:
    """``main 0.812, python 0.093``: thread names with at least a microsecond per request."""
    return ", ".join(f"{key} {value:.3f}" for key, value in split.items() if value >= 0.001)


def per_request(before: dict[str, float], after: dict[str, float], count: int) -> dict[str, float]:
    """CPU ms per request by thread name between two :func:`procstat.thread_seconds`."""
    return {key: (after[key] - before.get(key, 0.0)) * 1000 / count for key in after}


def run_rounds(
    calls: dict[str, tuple[Callable[[], None], list[int]]], clients: int, requests: int, rounds: int
) -> dict[str, Tally]:
    """Alternate the variants' cells (A B, then B A, ...) and tally each."""
    tallies = {name: Tally() for name in calls}
    order = list(calls)
    for index in range(rounds):
        for name in order if index % 2 == 0 else order[::-1]:
            call, pids = calls[name]
            before = procstat.thread_seconds(pids)
            user, system = procstat.user_system_seconds(pids)
            figures = measure(call, clients, requests, list, list)
            split = per_request(before, procstat.thread_seconds(pids), figures.requests)
            user_after, system_after = procstat.user_system_seconds(pids)
            tally = tallies[name]
            spent = user_after - user + system_after - system
            tally.system_share.append((system_after - system) / spent if spent else 0.0)
            tally.threads.append(split)
            tally.per_second.append(figures.per_second)
            tally.p50_ms.append(figures.p50_ms)
            tally.p99_ms.append(figures.p99_ms)
    return tallies


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run the rounds, print one line per variant and the model server's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", type=parse_variant, metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--endpoint", choices=sorted(PAYLOADS), default="qa")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gateway workers per variant")
    parser.add_argument("--batching-parameters", type=Path)
    arguments = parser.parse_args(argv)
    options = Options(
        repo=arguments.model_repo.resolve(),
        concurrencies=[arguments.clients],
        total=arguments.requests,
        workers=arguments.workers,
        worker_class="gevent",
        paths=("gateway",),
        profile_dir=None,
        profile_seconds=0,
        log_level="INFO",
    )
    body = json.dumps(PAYLOADS[arguments.endpoint]).encode()
    with ExitStack() as stack:
        servers: dict[str, LaunchedServer] = {}
        calls = {}
        for name, extra in arguments.variants:
            flags = dict(extra).get("SERVER_ARGS", "")
            if flags not in servers:
                own = [flag for flag in flags.split(";") if flag]
                servers[flags] = stack.enter_context(
                    model_server(
                        options.repo,
                        True,
                        arguments.batching_parameters,
                        shipped_server_flags(own),
                    )
                )
            server = servers[flags]
            extra = tuple(pair for pair in extra if pair[0] != "SERVER_ARGS")
            gateway = start_gateway(stack, options, server, extra)
            call = fixed_http(gateway.url, arguments.endpoint, body)
            for _ in range(WARMUP_CALLS):
                call()
            calls[name] = (call, gateway.worker_pids())
        backend = [server.process.pid for server in servers.values()]
        before = procstat.thread_seconds(backend)
        tallies = run_rounds(calls, arguments.clients, arguments.requests, arguments.rounds)
        answered = sum(len(tally.threads) for tally in tallies.values()) * arguments.requests
        backend_split = per_request(before, procstat.thread_seconds(backend), answered)
    print(f"{arguments.endpoint}, {arguments.clients} clients, {arguments.workers} workers:")
    for name, tally in tallies.items():
        print("  " + tally.line(name))
    shown = ", ".join(
        f"{key} {value:.3f}" for key, value in backend_split.items() if value >= 0.001
    )
    print(f"  model server: {sum(backend_split.values()):.3f} ms CPU/request ({shown})")
    print(f"  load average after: {procstat.load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
