"""Backend failure -> HTTP status, without the server's raw text."""

from __future__ import annotations

import pytest

from serving.gateway.errors import BackendError, BackendFailure, backend_to_gateway


@pytest.mark.parametrize(
    ("failure", "status"),
    [
        (BackendFailure.UNAVAILABLE, 503),
        (BackendFailure.DEADLINE_EXCEEDED, 504),
        (BackendFailure.INVALID_ARGUMENT, 502),
        (BackendFailure.NOT_FOUND, 404),
        (BackendFailure.INTERNAL, 502),
    ],
)
def test_backend_failure_mapping_hides_raw_messages(failure, status) -> None:
    error = backend_to_gateway(BackendError(failure, "tensorflow::Status secret text"), 3)
    assert error.status == status
    assert "secret" not in error.message
    assert error.body()["detail"] == []
    assert (error.headers.get("Retry-After") == "3") == (status == 503)
