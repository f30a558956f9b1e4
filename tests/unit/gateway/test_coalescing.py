"""Request coalescing (serving/gateway/coalescing.py): who shares a call, what each gets back.

The backend here is a plain-Python one whose answer depends only on each row's non-pad ids
(as a masking model's does), so a padded, merged row must answer exactly as it does alone.
Its first call can be held until the test has queued the requests it wants merged.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from serving.gateway.backends import VersionSelector
from serving.gateway.backends.base import AVAILABLE, ModelMetadata, VersionStatus
from serving.gateway.coalescing import Coalescer
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.metrics import GatewayMetrics

PAD = 0
POISON = 666  # an id the backend refuses, as a server refuses a bad tensor
WAIT_SECONDS = 10.0
HELD = 60.0  # a held call holds the requests queued behind it for the whole test


@dataclass
class RowBackend:
    """``predict`` -> per row: the sum and count of its non-pad ids, and the pad seen."""

    pad: int = PAD
    failure: BackendFailure | None = None  # every call with 2+ rows fails so, if set
    retryable: bool = False  # its flag: True for a true UNAVAILABLE (the server is down)
    # model, version, rows, request ids of each call
    calls: list[tuple[str, int, int, str]] = field(default_factory=list)
    hold: threading.Event | None = None  # the first call waits for it
    entered: threading.Event = field(default_factory=threading.Event)

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        ids = inputs["ids"]
        assert selector.version is not None
        self.calls.append((model, selector.version, ids.shape[0], request_id or ""))
        if self.hold is not None:
            hold, self.hold = self.hold, None
            self.entered.set()
            assert hold.wait(WAIT_SECONDS)
        if (ids == POISON).any():
            raise BackendError(BackendFailure.INVALID_ARGUMENT, "id out of range")
        if self.failure is not None and ids.shape[0] > 1:
            raise BackendError(self.failure, "merged call failed", self.retryable)
        real = ids != self.pad
        return {
            "sum": np.where(real, ids, 0).sum(axis=1).astype(np.float32),
            "count": real.sum(axis=1).astype(np.float32),
        }

    def model_status(self, model: str, request_id: str | None = None) -> list[VersionStatus]:
        return [VersionStatus(version=1, state=AVAILABLE)]

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        return ModelMetadata(name=model, version=selector.version or 1)

    def close(self) -> None:
        """Nothing to close."""


def rows(*lengths: int, start: int = 1) -> dict[str, npt.NDArray[Any]]:
    """A request of ``len(lengths)`` rows of ids ``start..``, right-padded with PAD."""
    width = max(lengths)
    ids = np.full((len(lengths), width), PAD, dtype=np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = np.arange(start, start + length)
    return {"ids": ids}


def alone(inputs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """The answer of ``inputs`` in a call of their own."""
    return RowBackend().predict("m", VersionSelector(version=1), inputs)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(8) as executor:
        yield executor


def patient(
    backend: RowBackend, max_rows: int, max_in_flight: int, metrics: GatewayMetrics | None = None
) -> Coalescer:
    """A coalescer whose calls hold queued requests for as long as a test runs."""
    return Coalescer(backend, metrics or GatewayMetrics(), max_rows, max_in_flight, HELD)


def hold_first(
    coalescer: Coalescer, backend: RowBackend, pool: ThreadPoolExecutor, pad: int = PAD
) -> tuple[threading.Event, Future[Any]]:
    """Start a one-row request "first" to "m" 1 whose call waits for the returned event;
    return once the call is in the backend."""
    backend.hold = threading.Event()
    release = backend.hold
    first = pool.submit(coalescer.predict, "m", 1, pad, rows(1), "first")
    assert backend.entered.wait(WAIT_SECONDS)
    return release, first


def wait_queued(coalescer: Coalescer, model: str, version: int, count: int) -> None:
    """Wait (bounded) until ``count`` requests to ``model`` ``version`` are queued."""
    deadline = time.monotonic() + WAIT_SECONDS
    while coalescer.queued(model, version) < count:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def held(
    coalescer: Coalescer,
    backend: RowBackend,
    pool: ThreadPoolExecutor,
    queued: list[tuple[str, int, dict[str, npt.NDArray[Any]]]],
    pad: int = PAD,
) -> tuple[Future[Any], list[Future[Any]]]:
    """Start a first request whose call is held, queue ``queued`` (model, version, inputs)
    behind it, then let the call go; the futures of the first and of the queued."""
    release, first = hold_first(coalescer, backend, pool, pad)
    futures = []
    for index, (model, version, inputs) in enumerate(queued):
        futures.append(pool.submit(coalescer.predict, model, version, pad, inputs, f"r{index}"))
        wait_queued(coalescer, model, version, index + 1)  # one lane in these tests
    release.set()
    return first, futures


def test_a_lone_request_is_sent_at_once_unchanged() -> None:
    backend = RowBackend()
    metrics = GatewayMetrics()
    coalescer = patient(backend, 32, 1, metrics)
    inputs = rows(3, 1)
    outputs = coalescer.predict("m", 1, PAD, inputs, "only")
    assert backend.calls == [("m", 1, 2, "only")]
    for key, value in alone(inputs).items():
        np.testing.assert_array_equal(outputs[key], value)
    sample = metrics.registry.get_sample_value
    assert sample("gateway_batch_size_sum", {"model": "m"}) == 2.0
    assert sample("gateway_merged_requests_total", {"model": "m"}) is None  # shared no call


def test_requests_queued_behind_a_call_share_the_next_one(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    metrics = GatewayMetrics()
    coalescer = patient(backend, 32, 1, metrics)
    queued = [rows(5), rows(1, 7, 2, start=10), rows(3, start=40)]
    first, futures = held(coalescer, backend, pool, [("m", 1, q) for q in queued])
    first.result(WAIT_SECONDS)
    for inputs, future in zip(queued, futures, strict=True):
        outputs = future.result(WAIT_SECONDS)
        for key, value in alone(inputs).items():
            np.testing.assert_array_equal(outputs[key], value)
    # one call for the held request, then one for all three queued ones (5 rows)
    assert [call[2] for call in backend.calls] == [1, 5]
    assert backend.calls[1][3] == "r0,r1,r2"  # every member's request id forwarded
    sample = metrics.registry.get_sample_value
    assert sample("gateway_batch_size_count", {"model": "m"}) == 2.0  # backend calls
    assert sample("gateway_batch_size_sum", {"model": "m"}) == 6.0  # examples
    assert sample("gateway_merged_requests_total", {"model": "m"}) == 3.0
    assert coalescer.queued("m", 1) == 0


def test_merged_rows_are_padded_with_the_specs_pad_id(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend(pad=7)
    coalescer = patient(backend, 32, 1)
    short = {"ids": np.array([[1, 2]], dtype=np.int32)}
    long = {"ids": np.array([[3, 4, 5, 6]], dtype=np.int32)}
    first, futures = held(coalescer, backend, pool, [("m", 1, short), ("m", 1, long)], pad=7)
    first.result(WAIT_SECONDS)
    # pad 7 is not an id of either row, so a right count means padding with 7, not 0
    assert futures[0].result(WAIT_SECONDS)["count"].tolist() == [2.0]
    assert futures[1].result(WAIT_SECONDS)["count"].tolist() == [4.0]


def test_a_call_carries_at_most_max_rows(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    coalescer = patient(backend, 4, 1)
    queued = [("m", 1, rows(1, 1)), ("m", 1, rows(1, 1)), ("m", 1, rows(1, 2, 3))]
    first, futures = held(coalescer, backend, pool, queued)
    first.result(WAIT_SECONDS)
    for future in futures:
        future.result(WAIT_SECONDS)
    assert [call[2] for call in backend.calls] == [1, 4, 3]


def test_a_request_of_max_rows_calls_alone_even_while_a_call_is_in_flight(
    pool: ThreadPoolExecutor,
) -> None:
    backend = RowBackend()
    coalescer = patient(backend, 4, 1)
    release, first = hold_first(coalescer, backend, pool)
    big = coalescer.predict("m", 1, PAD, rows(1, 2, 3, 4), "big")  # does not wait for first
    assert big["count"].tolist() == [1.0, 2.0, 3.0, 4.0]
    release.set()
    first.result(WAIT_SECONDS)


def test_only_requests_to_the_same_model_version_are_merged(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    coalescer = patient(backend, 32, 1)
    release, first = hold_first(coalescer, backend, pool)
    # other versions and models have lanes of their own: not held behind "m" 1
    assert coalescer.predict("m", 2, PAD, rows(2), "v2")["count"].tolist() == [2.0]
    assert coalescer.predict("n", 1, PAD, rows(3), "n")["count"].tolist() == [3.0]
    release.set()
    first.result(WAIT_SECONDS)
    assert [(call[0], call[1]) for call in backend.calls] == [("m", 1), ("m", 2), ("n", 1)]


def test_one_bad_request_fails_alone_not_the_call_it_shared(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    coalescer = patient(backend, 32, 1)
    poisoned = {"ids": np.array([[POISON, 1]], dtype=np.int32)}
    queued = [("m", 1, rows(2)), ("m", 1, poisoned), ("m", 1, rows(4))]
    first, futures = held(coalescer, backend, pool, queued)
    first.result(WAIT_SECONDS)
    assert futures[0].result(WAIT_SECONDS)["count"].tolist() == [2.0]
    with pytest.raises(BackendError) as raised:
        futures[1].result(WAIT_SECONDS)
    assert raised.value.failure is BackendFailure.INVALID_ARGUMENT
    assert futures[2].result(WAIT_SECONDS)["count"].tolist() == [4.0]
    # the merged call (3 rows) failed, then each member called alone
    assert sorted(call[2] for call in backend.calls) == [1, 1, 1, 1, 3]


def test_an_unavailable_backend_fails_every_member_without_more_calls(
    pool: ThreadPoolExecutor,
) -> None:
    backend = RowBackend(failure=BackendFailure.UNAVAILABLE, retryable=True)
    coalescer = patient(backend, 32, 1)
    first, futures = held(coalescer, backend, pool, [("m", 1, rows(1)), ("m", 1, rows(2))])
    first.result(WAIT_SECONDS)
    errors = []
    for future in futures:
        with pytest.raises(BackendError) as raised:
            future.result(WAIT_SECONDS)
        assert raised.value.failure is BackendFailure.UNAVAILABLE
        assert raised.value.retryable
        errors.append(raised.value)
    assert [call[2] for call in backend.calls] == [1, 2]
    # one error object per request: a shared one would carry every raiser's frames
    assert errors[0] is not errors[1]
    assert errors[0].message == errors[1].message


@pytest.mark.parametrize("max_rows", [0, 1])
def test_max_rows_of_one_or_less_gives_every_request_its_own_call(
    pool: ThreadPoolExecutor, max_rows: int
) -> None:
    backend = RowBackend()
    coalescer = patient(backend, max_rows, 1)
    release, first = hold_first(coalescer, backend, pool)
    assert coalescer.predict("m", 1, PAD, rows(2), "second")["count"].tolist() == [2.0]
    release.set()
    first.result(WAIT_SECONDS)
    assert [call[2] for call in backend.calls] == [1, 1]


def test_calls_in_flight_up_to_the_limit_before_requests_queue(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    coalescer = patient(backend, 32, 2)
    release, first = hold_first(coalescer, backend, pool)
    assert coalescer.predict("m", 1, PAD, rows(2), "second")["count"].tolist() == [2.0]
    release.set()
    first.result(WAIT_SECONDS)
    assert coalescer.queued("m", 1) == 0


def test_requests_held_too_long_by_a_call_go_out_without_it(pool: ThreadPoolExecutor) -> None:
    backend = RowBackend()
    coalescer = Coalescer(backend, GatewayMetrics(), 32, 1, max_hold_seconds=0.05)
    release, first = hold_first(coalescer, backend, pool)
    # queued behind the held call, then sent without it after max_hold_seconds
    assert coalescer.predict("m", 1, PAD, rows(3), "second")["count"].tolist() == [3.0]
    assert not first.done()
    release.set()
    assert first.result(WAIT_SECONDS)["count"].tolist() == [1.0]
    assert [call[3] for call in backend.calls] == ["first", "second"]
