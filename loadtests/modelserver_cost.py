"""CPU (or instructions) per gRPC Predict request of the local model server (benchmarks only).

Starts the local model server (batching as shipped, or ``--batching-parameters``) on the
chosen models of a repo, sends each model's requests (the tensors the gateway would send for
``loadtests/data`` payloads, drawn as in the mixed load) from ``--clients`` threads of this
process over gRPC, and prints the server's CPU milliseconds per request (``/proc``, every
thread) and requests/s per model and client count. Tensors are encoded before the clock
starts, so the figures are the server's own work plus the kernel's loopback.

``--callgrind`` runs the server under ``valgrind --tool=callgrind --instr-atstart=no`` and
counts instructions (Ir) per request instead, instrumentation on for the measured requests
only, split by shared object (CPython, TensorFlow, gRPC core, protobuf, ...): deterministic
enough to compare trees (``--root``) on a loaded machine, where CPU seconds are not.
``--py-spy DIR`` samples the server during each cell and writes the raw stacks there
(summarise with ``python -m loadtests.profiling``)::

    PYTHONPATH=. python -m loadtests.modelserver_cost --model-repo model_repo \\
        --models qa,profile,similarity --clients 1,8 --requests 400 [--callgrind] \\
        [--root BEFORE_TREE --root AFTER_TREE]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import cycle
from pathlib import Path

from loadtests import procstat, profiling
from loadtests.grpc_client import PredictClient
from loadtests.mixload import mixed_requests
from loadtests.tensors import ModelInputs
from loadtests.worker_cost import callgrind, objects
from serving.gateway.launcher import PROJECT_ROOT
from serving.modelserver.launcher import running
from serving.protos import tfs_wire_pb2

WARMUP = 40


def model_requests(repo: Path, name: str, count: int = 50) -> list[tfs_wire_pb2.PredictRequest]:
    """Up to ``count`` distinct PredictRequests for one model, from the mixed load's draws."""
    inputs = ModelInputs.from_repo(repo, name)
    client = PredictClient("127.0.0.1:1")  # only builds messages, never connects
    payloads = [item.payload for item in mixed_requests(count * 4) if item.endpoint == name]
    requests = [client.request(name, inputs.version, inputs.encode(p)) for p in payloads[:count]]
    client.close()
    return requests


CALL_DEADLINE = 30.0  # seconds per call (PredictClient's default)
CALLGRIND_DEADLINE = 1800.0  # seconds: ~50x slower under valgrind, and calls queue


def deadline(options: argparse.Namespace) -> float:
    """Each call's deadline in this run (under callgrind a queue of similarity calls takes
    minutes)."""
    return CALLGRIND_DEADLINE if options.callgrind else CALL_DEADLINE


def send(
    target: str,
    requests: list[tfs_wire_pb2.PredictRequest],
    clients: int,
    total: int,
    timeout_seconds: float = CALL_DEADLINE,
) -> float:
    """Send ``total`` requests from ``clients`` threads (one channel each), each with the
    deadline ``timeout_seconds``; wall seconds."""
    local = threading.local()
    pick = cycle(requests).__next__
    lock = threading.Lock()

    def one(_: int) -> None:
        client = getattr(local, "client", None) or PredictClient(target, timeout_seconds)
        local.client = client
        with lock:
            request = pick()
        client.call(request, timeout=client.timeout_seconds)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(total)))
    return time.perf_counter() - started


def server_command(options: argparse.Namespace, repo: Path, root: Path) -> list[str]:
    """The model server's command line (from the tree ``root``), under callgrind if asked."""
    command = [sys.executable, "-m", "serving.modelserver", "--port=0", "--rest_api_port=0"]
    command += [f"--model_config_file={repo / 'models.config'}", "--enable_batching=true"]
    parameters = options.batching_parameters or options.model_repo / "batching_parameters.txt"
    command.append(f"--batching_parameters_file={parameters.resolve()}")
    command += options.server_arg
    if options.callgrind:
        out = options.out / "callgrind.%p"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            *command,
        ]
    # ``-m`` puts the working directory first on sys.path: run from the tree being measured.
    script = 'cd "$1" && export PYTHONPATH="$1" && shift && exec "$@"'
    return ["sh", "-c", script, "sh", str(root), *command]


def subset_repo(source: Path, names: list[str], target: Path) -> Path:
    """A models.config serving only ``names`` from ``source`` (absolute base paths)."""
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{(source / name).resolve()}" '
        'model_platform: "tensorflow" model_version_policy { latest { num_versions: 1 } } }\n'
        for name in names
    )
    (target / "models.config").write_text(f"model_config_list {{\n{entries}}}\n")
    return target


def measure(options: argparse.Namespace) -> list[str]:
    """Every (model, clients) cell of every tree; one line per cell and tree. With several
    ``--root`` trees all servers run at once and each cell is measured A B .. B A (the
    machine's load falls on both alike); a tree's two runs of a cell are summed."""
    names = options.models.split(",")
    requests = {name: model_requests(options.model_repo, name) for name in names}
    repo = subset_repo(options.model_repo, names, options.out)
    lines = []
    timeout = 1800 if options.callgrind else 300
    with ExitStack() as stack:
        servers = [
            stack.enter_context(running(repo, server_command(options, repo, root), timeout))
            for root in options.root
        ]
        order = list(range(len(servers)))
        if len(servers) > 1:
            order += order[::-1]
        for name in names:
            for clients in options.clients:
                totals = [[0.0, 0.0] for _ in servers]  # wall, CPU seconds
                extras = ["" for _ in servers]  # callgrind: the tree's last run
                for index in order:
                    server = servers[index]
                    send(server.grpc_target, requests[name], clients, WARMUP, deadline(options))
                    wall, cpu, extra = cell(
                        options,
                        server.process.pid,
                        server.grpc_target,
                        requests[name],
                        clients,
                        f"{index}-{name}-c{clients}",
                    )
                    totals[index][0] += wall
                    totals[index][1] += cpu
                    extras[index] = extra
                for index, (wall, cpu) in enumerate(totals):
                    count = options.requests * order.count(index)
                    line = f"{name} c={clients} tree {index}: {count / wall:7.1f} req/s"
                    if options.callgrind:
                        line += "  " + extras[index]
                    else:
                        line += f"  {1000 * cpu / count:6.2f} ms CPU per request"
                    print(line, flush=True)
                    lines.append(line)
    return lines


def cell(
    options: argparse.Namespace,
    pid: int,
    target: str,
    requests: list[tfs_wire_pb2.PredictRequest],
    clients: int,
    label: str,
) -> tuple[float, float, str]:
    """One measured run: wall seconds, the server's CPU seconds, the callgrind summary."""
    spy = None
    if options.py_spy and not options.callgrind:
        spy = profiling.record(pid, 3600, options.py_spy / f"{label}.txt")
        time.sleep(1.0)  # py-spy attaches
    if options.callgrind:
        callgrind(pid, ["-z"], ["-i", "on"])
    cpu = procstat.cpu_seconds([pid])
    wall = send(target, requests, clients, options.requests, deadline(options))
    cpu = procstat.cpu_seconds([pid]) - cpu
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled
        spy.wait(60)
    extra = ""
    if options.callgrind:
        callgrind(pid, ["-i", "off"], ["-d"])
        extra = instructions(options, pid)
    return wall, cpu, extra


def instructions(options: argparse.Namespace, pid: int) -> str:
    """Ir per request of the latest dump, and its top shared objects; resets the counters."""
    dump = max(options.out.glob(f"callgrind.{pid}.*"), key=lambda path: path.stat().st_mtime)
    found = objects(dump)
    total = sum(found.values())
    dump.rename(dump.with_suffix(dump.suffix + ".read"))
    parts = [f"{total / options.requests / 1e6:.3f} M Ir per request ({dump.name})"]
    parts += [f"{count / options.requests / 1e3:.0f}k {obj}" for obj, count in found.most_common(8)]
    return "\n    ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Parse options and print one line per cell."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--models", default="qa,profile,similarity")
    parser.add_argument(
        "--clients", type=lambda text: [int(c) for c in text.split(",")], default=[1, 8]
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument(
        "--root", type=Path, action="append", help="a tree to serve from (repeat: A B B A)"
    )
    parser.add_argument("--batching-parameters", type=Path)
    parser.add_argument("--server-arg", action="append", default=[], help="extra server flag")
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--py-spy", type=Path, help="write py-spy raw stacks here")
    parser.add_argument("--out", type=Path, help="config and callgrind files (default: temp)")
    options = parser.parse_args(argv)
    options.out = (options.out or Path(tempfile.mkdtemp(prefix="modelserver-cost-"))).resolve()
    options.out.mkdir(parents=True, exist_ok=True)
    if options.py_spy:
        options.py_spy.mkdir(parents=True, exist_ok=True)
    options.model_repo = options.model_repo.resolve()
    options.root = [root.resolve() for root in options.root or [PROJECT_ROOT]]
    measure(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
