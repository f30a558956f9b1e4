"""The gateway app's own cost per request, in-process and deterministic (issue 9, round 3).

Drives the Flask app (``create_app`` with the gRPC backend, INFO logging to /dev/null,
prometheus multiprocess files as under gunicorn) with WSGI calls of ``bench_gateway``'s
payloads against a real local model server, and prints per request: the Python function
calls (``cProfile``, deterministic), the calling thread's CPU (``time.thread_time``, min of
``--repeats`` blocks, noisy) and the top entries by own time. gunicorn's HTTP parsing and the
socket write are not in it. Under callgrind, ``--callgrind`` turns instrumentation on for
the measured requests only (instructions per request = collected Ir / requests)::

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=OUT \\
        .venv/bin/python -m loadtests.gateway_cost --model-repo REPO --only qa --callgrind
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from loadtests.bench_gateway import PAYLOADS


def wsgi_call(app: Any, endpoint: str) -> Callable[[], None]:
    """One POST of the endpoint's payload straight into the WSGI app (no HTTP client)."""
    body = json.dumps(PAYLOADS[endpoint]).encode()
    builder = EnvironBuilder(
        f"/v1/{endpoint}", method="POST", data=body, content_type="application/json"
    )
    environ = builder.get_environ()
    statuses: list[str] = []

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        statuses.append(status)

    def call() -> None:
        fresh = {**environ, "wsgi.input": io.BytesIO(body)}
        answer = b"".join(app(fresh, start_response))
        if not statuses.pop().startswith("200"):
            raise RuntimeError(f"{endpoint}: {answer[:200]!r}")

    return call


def _callgrind(on: bool) -> None:
    switch = ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())]
    subprocess.run(switch, check=True, capture_output=True)


def measure(call: Callable[[], None], requests: int, repeats: int, top: int) -> str:
    """Calls and CPU per request, then the top functions by own CPU time."""
    best = min(_cpu_block(call, requests) for _ in range(repeats))
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    for _ in range(requests):
        call()
    profile.disable()
    text = io.StringIO()
    stats = pstats.Stats(profile, stream=text)
    calls = stats.total_calls / requests  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    return f"python calls {calls:.1f}/req, thread CPU {best * 1e6:.0f} us/req\n{text.getvalue()}"


def _cpu_block(call: Callable[[], None], requests: int) -> float:
    start = time.thread_time()
    for _ in range(requests):
        call()
    return (time.thread_time() - start) / requests


def main(argv: list[str] | None = None) -> int:
    """Parse options, start the model server, measure each endpoint."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, required=True)
    parser.add_argument("--only", nargs="+", default=["qa", "profile", "similarity"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--backend", choices=["grpc", "rest"], default="grpc")
    options = parser.parse_args(argv)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="gateway-cost-"))
    # Imported after the multiprocess directory is set: prometheus_client reads it at import.
    from serving.gateway.app import create_app
    from serving.gateway.backends.base import Backend
    from serving.gateway.backends.grpc_backend import GrpcBackend
    from serving.gateway.backends.rest_backend import RestBackend
    from serving.gateway.settings import GatewaySettings
    from tests.support.model_server import running_model_server

    with running_model_server(options.model_repo) as handle:
        out, sys.stderr = sys.stderr, open(os.devnull, "w")  # noqa: SIM115 (the log lines)
        settings = GatewaySettings.model_validate(
            {"model_repo": options.model_repo, "log_level": "INFO"}
        )
        backend: Backend = (
            GrpcBackend(handle.grpc_target, timeout_seconds=30.0, retry=None)
            if options.backend == "grpc"
            else RestBackend(handle.rest_url, timeout_seconds=30.0)
        )
        app = create_app(settings, backend=backend)
        try:
            for endpoint in options.only:
                call = wsgi_call(app, endpoint)
                for _ in range(50):  # warmup: runtimes, request models, metric children
                    call()
                if options.callgrind:
                    _callgrind(on=True)
                    for _ in range(options.requests):
                        call()
                    _callgrind(on=False)
                    print(f"{endpoint}: {options.requests} requests under callgrind", file=out)
                    continue
                figures = measure(call, options.requests, options.repeats, options.top)
                print(f"{endpoint}: {figures}", file=out)
        finally:
            app.extensions["gateway"].registry.stop()
            backend.close()
            sys.stderr = out
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
