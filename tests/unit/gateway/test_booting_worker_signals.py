"""A worker told to stop while it boots stops (gunicorn_conf.post_fork, stop_while_booting).

Between the fork and ``Worker.init_signals`` a gunicorn worker still has the master's signal
handlers, which only queue the signal for the master's loop: a SIGTERM then was lost, and the
master's shutdown waited graceful_timeout (20 s) before it SIGKILLed the worker. Each case runs
the hook in a child process that holds such a queueing handler, as a fresh worker does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from serving.gateway.launcher import PROJECT_ROOT

BOUND = 30  # seconds a swallowed signal leaves the child running; a bound, never an assertion
CHILD = f"""
import logging, os, signal, sys, time, types
queued = []
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
    signal.signal(number, lambda signum, frame: queued.append(signum))  # the master's kind
from serving.gateway import gunicorn_conf
server = types.SimpleNamespace(log=logging.getLogger("gunicorn.error"))
gunicorn_conf.post_fork(server, types.SimpleNamespace(pid=os.getpid()))
os.kill(os.getpid(), int(sys.argv[1]))
time.sleep({BOUND})
sys.exit(3)  # still running: the signal was queued, not acted on
"""


@pytest.mark.parametrize(
    ("number", "returncode"),
    # The two the master sends its workers: SIGTERM on a graceful stop, SIGQUIT on a quick one.
    [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGQUIT, 0)],
    ids=["SIGTERM", "SIGQUIT"],
)
def test_a_booting_worker_stops_on_a_stop_signal(number: int, returncode: int) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "GATEWAY_WORKER_CLASS": "gthread",  # no grpc gevent set-up in this plain process
        "GATEWAY_CPU_AFFINITY": "off",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(int(number))],
        env=environment,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND * 3,
        check=False,
    )
    assert done.returncode == returncode, done.stderr[-2000:]
