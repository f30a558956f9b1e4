"""What an operator can do to held items (``serving.gateway.holding``) that must not lose,
repeat or reorder them: a scrape or a line while the flusher writes, a write that fails,
the interval changed, the handler closed, an idle worker; found by the holding's
adversarial pass (holdbreak)."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from gunicorn.config import Config

from serving.gateway import holding
from serving.gateway.gunicorn_logs import JsonLogger
from serving.gateway.holding import Held
from serving.gateway.logs import LOGGER_NAME, JsonLinesHandler

# Bounded waits: how long a test waits for a thread before it looks at the outcome.
WAIT = 10


@pytest.fixture
def gateway_handlers() -> Iterator[logging.Logger]:
    """The gateway logger's handlers, restored afterwards."""
    gateway = logging.getLogger(LOGGER_NAME)
    saved = gateway.handlers[:], gateway.level, gateway.propagate
    yield gateway
    gateway.handlers[:], level, gateway.propagate = saved
    gateway.setLevel(level)


def _lines(stream: io.StringIO) -> list[str]:
    return [str(json.loads(line)["message"]) for line in stream.getvalue().splitlines()]


def test_a_flush_waits_for_the_write_under_way() -> None:
    # gthread: /metrics flushed while the flusher wrote the items it had just taken; the
    # scrape found the queue empty and read the values before they were written, and a value
    # held after them was written before them.
    written: list[int] = []
    writing, release = threading.Event(), threading.Event()

    def write_all(items: list[int]) -> None:
        if items[0] == 1:  # the flusher's batch: taken, not written yet
            writing.set()
            release.wait(WAIT)
        written.extend(items)

    holder: Held[int] = Held(3600, write_all)
    holder.add(1)
    holder.add(2)
    flusher = threading.Thread(target=holder.flush)
    flusher.start()
    assert writing.wait(WAIT)
    holder.add(3)
    seen: list[int] = []

    def scrape_reads() -> None:  # /metrics: flush, then read what was written
        holder.flush()
        seen.extend(written)

    scrape = threading.Thread(target=scrape_reads)
    scrape.start()
    scrape.join(timeout=0.5)  # a scrape that does not wait is done by now
    release.set()
    scrape.join(WAIT)
    flusher.join(WAIT)
    assert seen == [1, 2, 3]
    assert written == [1, 2, 3]


def test_a_write_that_fails_does_not_stop_later_flushes() -> None:
    written: list[str] = []

    def write_all(items: list[str]) -> None:
        if items == ["bad"]:
            raise RuntimeError("a write_all that broke its contract")
        written.extend(items)

    holder: Held[str] = Held(0.01, write_all)
    holder.add("bad")
    deadline = time.monotonic() + WAIT
    while holder._held and time.monotonic() < deadline:
        time.sleep(0.01)
    holder.add("good")
    while not written and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == ["good"]  # the flusher thread had died with the exception


def test_a_closed_stderr_does_not_stop_later_flushes(
    gateway_handlers: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write fails, logging's handleError then fails writing to the same closed stderr
    # (a ValueError, which it does not catch): the exception ended the flusher thread.
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)
    handler = JsonLinesHandler(closed)
    handler.hold_for(0.01)
    gateway_handlers.handlers[:] = [handler]
    gateway_handlers.propagate = False
    handler.info_line("serving.gateway.access", "lost", {})
    deadline = time.monotonic() + WAIT
    while handler._held._held and time.monotonic() < deadline:
        time.sleep(0.01)
    stream = io.StringIO()
    handler.setStream(stream)  # stderr back (a log reader restarted)
    handler.info_line("serving.gateway.access", "written", {})
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _lines(stream) == ["written"]


def test_a_line_given_while_the_interval_changes_is_written() -> None:
    # configure_logging again (a second create_app) replaced the holder: a line given by a
    # thread that had read the old one was held where nothing flushed it any more.
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    handler.hold_for(3600)
    stale = handler._held.add  # what info_line of a request under way had looked up
    handler.hold_for(7200)
    stale((time.time(), None, "serving.gateway.access", "given meanwhile", {}))
    handler.info_line("serving.gateway.access", "after", {})
    handler.hold_for(0)
    stale((time.time(), None, "serving.gateway.access", "held, then at once", {}))
    handler.info_line("serving.gateway.access", "at once", {})
    assert _lines(stream) == ["given meanwhile", "after", "held, then at once", "at once"]


def test_a_shorter_interval_applies_at_once() -> None:
    # A second create_app with GATEWAY_ACCESS_LOG_FLUSH_SECONDS=0.01 after one with 60: the
    # flusher slept out the old minute, holding the new interval's lines that long.
    written: list[str] = []
    holder: Held[str] = Held(3600, written.extend)
    before = {thread.ident for thread in threading.enumerate()}
    holder.add("held an hour")
    (flusher,) = _flushers_since(before)
    deadline = time.monotonic() + WAIT
    while _interval_of(flusher) != 3600 and time.monotonic() < deadline:
        time.sleep(0.01)
    holder.hold_for(0.01)
    holder.add("held 0.01 s")
    while len(written) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == ["held an hour", "held 0.01 s"]


def _flushers_since(before: set[int | None]) -> list[threading.Thread]:
    """The flusher threads started since ``before`` (the thread idents there were)."""
    return [
        thread
        for thread in threading.enumerate()
        if thread.name == holding.FLUSHER_NAME and thread.ident not in before
    ]


def _interval_of(thread: threading.Thread) -> object:
    """The interval the flusher ``thread`` waits out now, if it has read one."""
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    while frame is not None and frame.f_code.co_name != "_flush_every":
        frame = frame.f_back
    return None if frame is None else frame.f_locals.get("seconds")


def test_a_line_json_cannot_hold_is_dropped_alone() -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    handler.hold_for(3600)
    circular: dict[str, object] = {}
    circular["self"] = circular
    handler.info_line("serving.gateway.access", "before", {})
    handler.info_line("serving.gateway.access", "circular", {"field": circular})
    handler.info_line("serving.gateway.access", "after", {})
    raising, logging.raiseExceptions = logging.raiseExceptions, False  # handleError's print
    try:
        handler.flush()
    finally:
        logging.raiseExceptions = raising
    assert _lines(stream) == ["before", "after"]


def test_a_line_given_to_a_closed_handler_is_written_at_once() -> None:
    # An operator's dictConfig closes the gateway's handler; a request that had found it
    # (direct_handler) gives it its line just after: held there, nothing flushed it.
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    handler.hold_for(3600)
    handler.info_line("serving.gateway.access", "held", {})
    handler.close()
    assert _lines(stream) == ["held"]
    handler.info_line("serving.gateway.access", "late", {})
    assert _lines(stream) == ["held", "late"]


def test_an_idle_flusher_waits_for_an_item_not_the_clock() -> None:
    # It woke every interval (10 times a second per holder, two per worker) with nothing held.
    written: list[str] = []
    holder: Held[str] = Held(0.01, written.extend)
    before = {thread.ident for thread in threading.enumerate()}
    holder.add("one")
    (flusher,) = _flushers_since(before)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not (written and _waits_for_an_event(flusher)):
        time.sleep(0.01)
    assert written == ["one"]
    assert _waits_for_an_event(flusher)
    holder.add("two")  # woken by the item
    while written == ["one"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == ["one", "two"]


def _waits_for_an_event(thread: threading.Thread) -> bool:
    assert thread.ident is not None
    frame = sys._current_frames().get(thread.ident)
    return frame is not None and frame.f_code.co_name == "wait"  # Condition.wait


def test_a_gunicorn_line_comes_after_the_held_access_lines(
    gateway_handlers: logging.Logger,
) -> None:
    # gunicorn's lines have a handler of their own: "Worker exiting" was written before the
    # access lines of the worker's last requests.
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    handler.hold_for(3600)
    gateway_handlers.handlers[:] = [handler]
    error_log = logging.getLogger("gunicorn.error")
    saved = error_log.handlers[:], error_log.filters[:], error_log.propagate, error_log.level
    try:
        gunicorn = JsonLogger(Config())
        for own in gunicorn.error_log.handlers:
            own.setStream(stream)
        handler.info_line("serving.gateway.access", "GET /healthz 200", {})
        gunicorn.info("Worker exiting (pid: %s)", 1)
    finally:
        error_log.handlers[:], error_log.filters[:], error_log.propagate, level = saved
        error_log.setLevel(level)
    assert _lines(stream) == ["GET /healthz 200", "Worker exiting (pid: 1)"]


def test_concurrent_items_are_written_once_each_in_each_threads_order() -> None:
    # gthread: requests on several threads, the flusher, the queue's limit and a scrape
    # (flush) all writing at once.
    written: list[tuple[int, int]] = []

    def write_all(items: list[tuple[int, int]]) -> None:
        for item in items:  # item by item: a thread switch can come mid-write
            written.append(item)

    holder: Held[tuple[int, int]] = Held(0.001, write_all)
    count = holding.HOLD_LIMIT + 500  # past the limit: requests write too

    def requests(thread: int) -> None:
        for number in range(count):
            holder.add((thread, number))
            if number % 1000 == 0:
                holder.flush()  # a scrape

    threads = [threading.Thread(target=requests, args=(thread,)) for thread in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often (a busy gthread worker's many threads)
    try:
        for worker in threads:
            worker.start()
        for worker in threads:
            worker.join(WAIT * 6)
    finally:
        sys.setswitchinterval(switch)
    holder.flush()
    assert sorted(written) == [(thread, number) for thread in range(4) for number in range(count)]
    for thread in range(4):
        assert [number for who, number in written if who == thread] == list(range(count))
