"""The servers a gateway benchmark measures, started for the length of a run.

What to measure (:class:`Options`), the local model server, the gateway (gunicorn, gRPC
backend, optional other settings or source tree) and the in-process HTTP baseline, each on a
free port until the caller's ``ExitStack`` closes. Shared by ``loadtests.bench_gateway``
(``make bench``) and ``loadtests.batching_sweep``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from serving.gateway.launcher import PROJECT_ROOT, RunningGateway, running_gateway
from serving.modelserver.launcher import LaunchedServer, running, server_command

ENDPOINTS = ("qa", "profile", "similarity", "mixed")
SHIPPED_CPU_AFFINITY = "per-worker"  # scripts/run_local.sh: one CPU per gateway worker


@dataclass(frozen=True)
class Options:
    """What to measure."""

    repo: Path
    concurrencies: list[int]
    total: int
    workers: int
    worker_class: str
    paths: tuple[str, ...]
    profile_dir: Path | None
    profile_seconds: int
    log_level: str
    endpoints: tuple[str, ...] = ENDPOINTS
    batching: bool = True
    batching_parameters: Path | None = None
    modelserver_args: tuple[str, ...] = ()
    threads: int = 4
    out: Path | None = None
    variants: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    abba: bool = False


@contextmanager
def model_server(
    repo: Path,
    batching: bool = True,
    parameters: Path | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[LaunchedServer]:
    """The local model server for repo, started and AVAILABLE; stopped afterwards."""
    command = server_command(
        repo, batching=batching, batching_parameters_file=parameters, extra_args=extra_args
    )
    with running(repo, command, timeout=300) as server:
        yield server


def start_gateway(
    stack: ExitStack,
    options: Options,
    server: LaunchedServer,
    extra: Sequence[tuple[str, str]] = (),
) -> RunningGateway:
    """The gateway in front of ``server`` (gunicorn, gRPC backend; ``extra`` settings, such as
    ``GATEWAY_BACKEND=rest`` for its REST port; ``ROOT``: another source tree, ``PYTHON``:
    another interpreter, such as a virtualenv's) on a free port until ``stack`` closes."""
    # INFO (the default) writes one JSON access line per request: part of the real cost.
    environment = {
        "GATEWAY_MODEL_REPO": str(options.repo),
        "GATEWAY_LOG_LEVEL": options.log_level,
        "GATEWAY_BACKEND": "grpc",
        "GATEWAY_GRPC_TARGET": server.grpc_target,
        "GATEWAY_REST_URL": server.rest_url,
        "GATEWAY_WORKER_CLASS": options.worker_class,
        # as scripts/run_local.sh (make run); a variant sets GATEWAY_CPU_AFFINITY=off to compare
        "GATEWAY_CPU_AFFINITY": SHIPPED_CPU_AFFINITY,
        **{key: value for key, value in extra if key not in ("ROOT", "PYTHON")},
    }
    chosen = dict(extra)
    root = Path(chosen.get("ROOT", PROJECT_ROOT))
    return stack.enter_context(
        running_gateway(
            environment,
            workers=options.workers,
            threads=options.threads,
            ready_path="/readyz",
            timeout=300,
            root=root,
            python=chosen.get("PYTHON", sys.executable),
        )
    )


def start_baseline(stack: ExitStack, options: Options) -> RunningGateway:
    """The in-process HTTP baseline: one gthread worker, 8 threads, SavedModels in it, no
    batching (no request coalescing)."""
    environment = {
        "GATEWAY_MODEL_REPO": str(options.repo),
        "GATEWAY_LOG_LEVEL": options.log_level,
        "GATEWAY_BACKEND": "local",
        "GATEWAY_WORKER_CLASS": "gthread",
        # issue 9's baseline does no batching: every request its own model call
        "GATEWAY_COALESCE_MAX_ROWS": "0",
    }
    return stack.enter_context(
        running_gateway(environment, workers=1, threads=8, ready_path="/readyz", timeout=300)
    )
