"""A gzip REST body is exactly one gzip member, as TF Serving's HTTP server reads it."""

from __future__ import annotations

import gzip

import grpc
import pytest

from serving.modelserver.errors import ServingError
from serving.modelserver.rest_body import decompressed

BODY = b'{"instances": [[1, 2]]}'


def test_one_member_is_the_body() -> None:
    assert decompressed(gzip.compress(BODY)) == BODY


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b'{"instances": [[1, 2]]') + gzip.compress(b', "signature_name": "x"}'),
        gzip.compress(BODY) + gzip.compress(b""),
        gzip.compress(BODY) + b"\x00" * 8,
        gzip.compress(BODY) + b"trailing",
    ],
    ids=["two-members", "an-empty-second-member", "zero-padding", "trailing-bytes"],
)
def test_bytes_after_the_first_member_are_refused(data: bytes) -> None:
    """Found by hostile pass 7: only the first member was read, the rest dropped: a body of
    two members was answered as its first (here a JSON cut short), trailing bytes ignored.
    TF Serving's ZLib fails on input left after the stream's end (an empty body, 400)."""
    with pytest.raises(ServingError) as raised:
        decompressed(data)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.message.startswith("The request body is not valid gzip (bytes after")
