"""Request coalescing when a request dies while it waits (gevent kills greenlets: gunicorn's
graceful timeout; ``gevent.Timeout``), and when a merged call's answer has the wrong rows.

The gevent scenarios run in a child process patched by ``gevent.monkey`` as gunicorn's gevent
worker is, with the plain-Python backend of ``test_coalescing``; the child reports which
requests were answered. Every wait is bounded: a request left waiting shows as unanswered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy.typing as npt
import pytest

from serving.gateway.backends import VersionSelector
from serving.gateway.coalescing import Coalescer
from serving.gateway.errors import BackendFailure
from serving.gateway.metrics import GatewayMetrics
from tests.unit.gateway.test_coalescing import HELD, PAD, WAIT_SECONDS, RowBackend, held, rows

ROOT = Path(__file__).resolve().parents[3]
CHILD = (
    "from gevent import monkey; monkey.patch_all()\n"
    "import json, sys\n"
    "from tests.unit.gateway.test_coalescing_faults import killed_while_waiting\n"
    "print(json.dumps(killed_while_waiting(sys.argv[1])))\n"
)


def killed_while_waiting(when: str) -> dict[str, Any]:
    """In a gevent hub: "first" leads a held call, "a" and "b" queue behind it; "a" is killed
    while queued ("queued"), or together with "first" as gunicorn's graceful timeout kills
    them (first "first", whose hand-over makes "a" the next call's sender, then "a":
    "handed"; "handed-alone": the same with two rows each and calls of at most 3 rows, so
    "a" is handed a call of its own and "b" stays queued for the call after it). What "b"
    got, and the request ids of each backend call."""
    import gevent
    import gevent.event

    backend = RowBackend(hold=gevent.event.Event())
    release = backend.hold
    assert release is not None
    alone = when == "handed-alone"
    coalescer = Coalescer(backend, GatewayMetrics(), 3 if alone else 32, 1, HELD)
    spawn = gevent.spawn

    def predict(name: str, *lengths: int) -> list[float]:
        outputs = coalescer.predict("m", 1, PAD, rows(*lengths), name)
        return [float(count) for count in outputs["count"]]

    first = spawn(predict, "first", 1)
    assert backend.entered.wait(WAIT_SECONDS)
    a = spawn(predict, "a", *((2, 2) if alone else (2,)))
    b = spawn(predict, "b", *((3, 3) if alone else (3,)))
    with gevent.Timeout(WAIT_SECONDS):
        while coalescer.queued("m", 1) < 2:
            gevent.sleep(0.001)
    if when == "queued":
        a.kill(timeout=WAIT_SECONDS)
        release.set()
    else:
        gevent.killall([first, a], timeout=WAIT_SECONDS)
    b.join(WAIT_SECONDS)
    return {"b": b.value, "calls": [call[3] for call in backend.calls]}


@pytest.mark.parametrize("when", ["queued", "handed", "handed-alone"])
def test_a_request_killed_while_it_waits_leaves_none_waiting(when: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, when],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=WAIT_SECONDS * 6,
        check=True,
    )
    report = json.loads(child.stdout.splitlines()[-1])
    # None: "b" still waited for a call nobody would send
    assert report["b"] == ([3.0, 3.0] if when == "handed-alone" else [3.0])
    assert report["calls"] == ["first", "b"]  # the dead "a" is in no call


class ShortBackend(RowBackend):
    """Answers one row short: the first row's outputs are missing (a model that does not fit
    its spec; the gateway's heads answer 502 for such outputs)."""

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        outputs = super().predict(model, selector, inputs, request_id)
        return {key: value[1:] for key, value in outputs.items()}


def test_a_merged_answer_without_one_row_per_input_row_is_not_sliced_among_members() -> None:
    backend = ShortBackend()
    coalescer = Coalescer(backend, GatewayMetrics(), 32, 1, HELD)
    with ThreadPoolExecutor(4) as pool:
        queued = [("m", 1, rows(2)), ("m", 1, rows(5))]
        first, futures = held(coalescer, backend, pool, queued)
        first.result(WAIT_SECONDS)
        answers = [future.result(WAIT_SECONDS)["count"].tolist() for future in futures]
    # as alone: no rows (which the heads reject), not the other member's row ([[5.0], []])
    assert answers == [[], []]
    assert [call[3] for call in backend.calls] == ["first", "r0,r1", "r0", "r1"]


@pytest.mark.parametrize("failure", [BackendFailure.UNAVAILABLE, BackendFailure.TOO_LARGE])
def test_a_merged_call_too_big_for_the_server_makes_each_member_call_alone(
    failure: BackendFailure,
) -> None:
    # gRPC's RESOURCE_EXHAUSTED (a tensor the server could not allocate) reaches the
    # coalescer as an UNAVAILABLE that is not retryable, a message over a size limit as
    # TOO_LARGE: the merged call's size, maybe no member's
    backend = RowBackend(failure=failure, retryable=False)
    coalescer = Coalescer(backend, GatewayMetrics(), 32, 1, HELD)
    with ThreadPoolExecutor(4) as pool:
        queued = [("m", 1, rows(2)), ("m", 1, rows(5))]
        first, futures = held(coalescer, backend, pool, queued)
        first.result(WAIT_SECONDS)
        answers = [future.result(WAIT_SECONDS)["count"].tolist() for future in futures]
    assert answers == [[2.0], [5.0]]  # as alone, not the merged call's 503
    assert [call[3] for call in backend.calls] == ["first", "r0,r1", "r0", "r1"]
