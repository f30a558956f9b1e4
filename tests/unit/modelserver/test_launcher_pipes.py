"""The launcher's pipe of a model server's stdout is closed once the server stopped."""

from __future__ import annotations

import sys
import threading

from serving.modelserver.launcher import PUMP_THREAD, launch
from serving.processes import stop_process

# A stand-in for the server: prints the ready line the launcher waits for, then waits.
SERVER = (
    "import time; print('modelserver ready grpc_port=1 rest_port=2', flush=True); time.sleep(600)"
)


def test_a_stopped_servers_stdout_pipe_is_closed() -> None:
    # It was left to the garbage collector: "ResourceWarning: unclosed file
    # <_io.TextIOWrapper name=14>" in whichever test ran when a gc came (every test that
    # starts its own model server left one).
    launched = launch([sys.executable, "-c", SERVER], startup_timeout=60)
    stream = launched.process.stdout
    assert stream is not None and not stream.closed
    stop_process(launched.process)
    launched.stderr_path.unlink(missing_ok=True)
    for thread in threading.enumerate():
        if thread.name == PUMP_THREAD:
            thread.join(30)  # it reads to the end of the pipe, then closes it
    assert stream.closed
