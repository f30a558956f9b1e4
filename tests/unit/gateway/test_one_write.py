"""The gateway workers' answer writes: one ``send`` per answer (a partial one finished by
``sendall``), and gunicorn's Date header formatted once per second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from gunicorn import util
from gunicorn.http import wsgi

from serving.gateway.one_write import http_date, send_all, use_one_write_responses


@pytest.fixture(autouse=True)
def _restore_gunicorn() -> Iterator[None]:
    original, date = wsgi.Response, util.http_date
    yield  # use_one_write_responses replaces them
    wsgi.Response, util.http_date = original, date


class ShortSendSocket:
    """A socket whose ``send`` takes only the first ``taken`` bytes (a full send buffer)."""

    def __init__(self, taken: int) -> None:
        self.taken = taken
        self.calls: list[str] = []
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.calls.append("send")
        self.sends.append(bytes(data[: self.taken]))
        return min(self.taken, len(data))

    def sendall(self, data: bytes) -> None:
        self.calls.append("sendall")
        self.sends.append(bytes(data))


def test_an_answer_is_one_send_and_a_partial_send_is_finished() -> None:
    whole = ShortSendSocket(taken=1 << 20)
    send_all(whole, b"answer")
    assert whole.calls == ["send"] and whole.sends == [b"answer"]
    short = ShortSendSocket(taken=2)
    send_all(short, b"answer")
    assert short.calls == ["send", "sendall"] and b"".join(short.sends) == b"answer"


def test_the_date_header_reads_as_gunicorns_and_changes_each_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_one_write_responses()
    assert util.http_date is http_date
    for stamp in (0.0, 1_700_000_000.75, 4_102_444_799.0):
        assert http_date(stamp) == formatdate(stamp, usegmt=True)  # gunicorn's own rule
    clock = iter([1_700_000_000.2, 1_700_000_000.9, 1_700_000_001.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    first, same, later = http_date(), http_date(), http_date()
    assert first == formatdate(1_700_000_000, usegmt=True) and same is first  # formatted once
    assert later == formatdate(1_700_000_001, usegmt=True)
