"""Only UNAVAILABLE is retried, a bounded number of times."""

from __future__ import annotations

import time

import pytest

from serving.gateway.backends import RetryPolicy
from serving.gateway.errors import BackendError, BackendFailure


def _flaky(failures: list[BackendFailure]):
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            failure = failures[len(calls) - 1]
            raise BackendError(failure, "boom", failure is BackendFailure.UNAVAILABLE)
        return "ok"

    return call, calls


def test_unavailable_is_retried_until_success() -> None:
    call, calls = _flaky([BackendFailure.UNAVAILABLE] * 2)
    assert RetryPolicy(retries=2, backoff_seconds=0).run(call) == "ok"
    assert len(calls) == 3


def test_retries_are_bounded() -> None:
    call, calls = _flaky([BackendFailure.UNAVAILABLE] * 5)
    with pytest.raises(BackendError):
        RetryPolicy(retries=2, backoff_seconds=0).run(call)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "failure",
    [BackendFailure.DEADLINE_EXCEEDED, BackendFailure.INVALID_ARGUMENT, BackendFailure.NOT_FOUND],
)
def test_other_failures_are_not_retried(failure) -> None:
    call, calls = _flaky([failure])
    with pytest.raises(BackendError):
        RetryPolicy(retries=3, backoff_seconds=0).run(call)
    assert len(calls) == 1


def test_non_retryable_unavailable_is_not_retried() -> None:
    calls = []

    def call() -> str:
        calls.append(1)
        raise BackendError(BackendFailure.UNAVAILABLE, "queue full", retryable=False)

    with pytest.raises(BackendError):
        RetryPolicy(retries=3, backoff_seconds=0).run(call)
    assert len(calls) == 1


def test_no_retry_starts_past_the_deadline() -> None:
    """A late UNAVAILABLE (a connect timeout, a reset mid-call) is not retried past the
    call's deadline: each retry would wait a whole timeout again."""
    call, calls = _flaky([BackendFailure.UNAVAILABLE] * 5)
    with pytest.raises(BackendError):
        RetryPolicy(retries=3, backoff_seconds=0).run(call, deadline=time.monotonic() - 1)
    assert len(calls) == 1
    call, calls = _flaky([BackendFailure.UNAVAILABLE] * 2)
    assert RetryPolicy(retries=3, backoff_seconds=0).run(call, time.monotonic() + 60) == "ok"
    assert len(calls) == 3
