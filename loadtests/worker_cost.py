"""Instructions per request of one gateway worker under gunicorn, by callgrind (benchmarks only).

Starts the local model server (flags and batching as make run, or ``--batching-parameters``) and the
gateway with ONE worker (gevent unless ``--set GATEWAY_WORKER_CLASS=gthread``) under
``valgrind --tool=callgrind --trace-children=yes --instr-atstart=no``; after a warm-up it turns
instrumentation on in the worker for the measured requests only, then prints the worker's
instructions (Ir) per request, every thread counted (the app, gunicorn, gevent's loop, gRPC's
threads), and their split by shared object (CPython, the tokenizer, libc, gRPC's core, ...).
The kernel's work (syscalls, loopback TCP) is not in it. Deterministic enough to compare
trees or settings on a loaded machine (two runs of one tree: within ~1%), unlike CPU seconds::

    PYTHONPATH=. python -m loadtests.worker_cost --model-repo model_repo --endpoint qa \\
        --clients 8 --requests 200 [--root OTHER_TREE] [--set GATEWAY_GRPC_CALL_POOL=false] \\
        [--payload BODY.json] [--server-arg=--enable_serialization_as_tensor_content=false]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from loadtests.bench_gateway import shipped_server_flags
from loadtests.mixload import PAYLOADS
from serving.gateway.launcher import PROJECT_ROOT, wait_for_http
from serving.modelserver.launcher import running, server_command
from serving.processes import free_port, stop_process

NAME = re.compile(r"\((\d+)\)(?: (.*))?")


def objects(callgrind_file: Path) -> Counter[str]:
    """Self Ir per shared object (file name) of a callgrind output (name compression read)."""
    names: dict[str, str] = {}
    found: Counter[str] = Counter()
    current, after_call = "?", False
    for line in callgrind_file.read_text(errors="replace").splitlines():
        if line.startswith(("ob=", "cob=")):
            match = NAME.match(line.split("=", 1)[1])
            if match and match.group(2):
                names[match.group(1)] = match.group(2).rsplit("/", 1)[-1]
            if line.startswith("ob=") and match:
                current = names.get(match.group(1), "?")
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the call's inclusive cost: skip it
        elif line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if not after_call and len(parts) > 1:
                found[current] += int(parts[1])
            after_call = False
    return found


def callgrind(pid: int, *switches: list[str]) -> None:
    """Run ``callgrind_control`` switches on a process under callgrind (``-z`` zero the
    counters, ``-i on|off`` instrumentation, ``-d`` dump)."""
    for switch in switches:
        subprocess.run(["callgrind_control", *switch, str(pid)], check=True, capture_output=True)


def _load(
    url: str, endpoint: str, clients: int, requests_total: int, payload: object = None
) -> None:
    local = threading.local()
    body = PAYLOADS[endpoint] if payload is None else payload

    def one(_: int) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        answer = session.post(f"{url}/v1/{endpoint}", json=body, timeout=300)
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.status_code}: {answer.text[:200]}")

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests_total)))


def measure(options: argparse.Namespace, out: Path) -> tuple[int, Path]:
    """Run the model server and one callgrind'ed worker; its pid and callgrind file."""
    repo: Path = options.model_repo.resolve()
    command = server_command(
        repo,
        batching=True,
        batching_parameters_file=options.batching_parameters,
        extra_args=shipped_server_flags(options.server_arg),
    )
    with running(repo, command, timeout=600) as server:
        port = free_port()
        environment = {
            **os.environ,
            "PYTHONPATH": str(options.root),
            "GATEWAY_PORT": str(port),
            "GATEWAY_BIND_HOST": "127.0.0.1",
            "GATEWAY_WORKERS": "1",
            "GATEWAY_MODEL_REPO": str(repo),
            "GATEWAY_GRPC_TARGET": server.grpc_target,
            "GATEWAY_REST_URL": server.rest_url,  # for --set GATEWAY_BACKEND=rest
            "GATEWAY_TIMEOUT": "600",  # valgrind is ~50x slower: no worker timeouts
            "GATEWAY_REQUEST_TIMEOUT_SECONDS": "120",
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="worker-cost-"),
            **dict(item.split("=", 1) for item in options.set),
        }
        valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no"]
        valgrind.append(f"--callgrind-out-file={out}/callgrind.%p")
        gateway = [sys.executable, "-m", "serving.gateway.command"]
        log = (out / "gunicorn.log").open("w")
        process = subprocess.Popen(
            valgrind + gateway, cwd=options.root, env=environment, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(f"{url}/readyz", 900, process)
            payload = json.loads(options.payload.read_text()) if options.payload else None
            _load(url, options.endpoint, options.clients, 40, payload)  # warm-up
            children = subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=True
            )
            worker = int(children.stdout.split()[0])
            callgrind(worker, ["-z"], ["-i", "on"])
            _load(url, options.endpoint, options.clients, options.requests, payload)
            callgrind(worker, ["-i", "off"], ["-d"])
        finally:
            stop_process(process, timeout=120.0)
            log.close()
    return worker, max(out.glob(f"callgrind.{worker}.*"), key=lambda path: path.stat().st_size)


def main(argv: list[str] | None = None) -> int:
    """Parse options, measure, print Ir per request and its split by shared object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--endpoint", choices=["qa", "profile", "similarity"], default="qa")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--root", type=Path, default=PROJECT_ROOT, help="the source tree to run")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for the gateway")
    parser.add_argument("--batching-parameters", type=Path)
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="a model server flag besides make run's, such as "
        "--server-arg=--enable_serialization_as_tensor_content=false",
    )
    parser.add_argument("--out", type=Path, help="callgrind files here (default: a temp dir)")
    parser.add_argument("--payload", type=Path, help="a JSON request body (default: mixload's)")
    options = parser.parse_args(argv)
    out = options.out or Path(tempfile.mkdtemp(prefix="worker-cost-"))
    out.mkdir(parents=True, exist_ok=True)
    worker, callgrind_file = measure(options, out)
    found = objects(callgrind_file)
    total = sum(found.values())
    print(
        f"{options.endpoint} x{options.requests} at {options.clients} clients, worker {worker}: "
        f"{total / options.requests / 1e6:.3f} M instructions per request ({callgrind_file})"
    )
    for name, count in found.most_common(8):
        print(f"  {100 * count / total:5.1f}%  {count / options.requests / 1e3:8.1f} k  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
