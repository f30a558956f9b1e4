"""The status calls of a version poll: asked at once, in threads kept for the next polls."""

from __future__ import annotations

import threading
from typing import cast

from serving.gateway.backends import Backend, VersionStatus
from serving.gateway.errors import BackendError, BackendFailure
from serving.gateway.model_state import StatusAsker

MODELS = ("qa", "profile", "similarity", "nli")


class _Statuses:
    """The one Backend method a poll's status calls use; notes the thread of each call."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def model_status(self, model: str) -> list[VersionStatus]:
        self.threads.append(threading.current_thread())
        if model == "nli":
            raise BackendError(BackendFailure.UNAVAILABLE, "the model server is gone")
        return [VersionStatus(version=1, state="AVAILABLE", error="")]


def test_a_polls_threads_are_kept_for_the_next_polls() -> None:
    # A pool made per poll started a thread per model every GATEWAY_VERSION_POLL_SECONDS
    # (~2% of a worker's CPU per qa request at one client: issue 9, round 18).
    asker, backend = StatusAsker(), _Statuses()
    try:
        for _ in range(3):
            answers = asker.statuses(cast(Backend, backend), MODELS)
            assert list(answers) == list(MODELS)  # each model its own answer, in order
            assert isinstance(answers["nli"], BackendError)
            assert answers["qa"] == [VersionStatus(version=1, state="AVAILABLE", error="")]
    finally:
        asker.close()
    assert len(backend.threads) == 12
    assert len(set(backend.threads)) <= len(MODELS)  # one pool's threads, not one per poll
    assert threading.main_thread() not in backend.threads


def test_one_model_is_asked_in_the_calling_thread() -> None:
    asker, backend = StatusAsker(), _Statuses()
    assert asker.statuses(cast(Backend, backend), ("qa",))["qa"][0].version == 1  # type: ignore[index]
    assert backend.threads == [threading.current_thread()]
