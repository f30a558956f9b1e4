"""What the gateway knows about one model, and the 503 for a model without a routed version."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from serving.gateway.backends import Backend, VersionStatus
from serving.gateway.backends.base import AVAILABLE, END
from serving.gateway.errors import BackendError, BackendFailure, GatewayError, retry_later
from serving.gateway.pid import current_pid
from serving.gateway.runtime import ModelRuntime

LOGGER = logging.getLogger("serving.gateway.registry")
# Status calls of one refresh in flight at once (one deadline for up to this many models).
STATUS_THREADS = 32


@dataclass
class ModelState:
    """What the gateway knows about one model (replaced whole, never edited in place)."""

    statuses: list[VersionStatus] = field(default_factory=list)
    routed: ModelRuntime | None = None
    error: str = ""
    backend_answered: bool = True
    unfit: dict[int, str] = field(default_factory=dict)  # version -> short reason
    # The last status call's failure: its kind, and the server's text (for logs only).
    failure: BackendFailure | None = None
    failure_text: str = ""


# What a status call's failure means for a client (the server's own text stays in the log).
STATUS_FAILURES = {
    BackendFailure.UNAVAILABLE: "the model server is unreachable",
    BackendFailure.DEADLINE_EXCEEDED: "the model server did not answer in time",
    BackendFailure.NOT_FOUND: "the model server has not loaded model '{model}'",
}


# A model in the gateway's models.config that the model server does not know: most often one
# exported after the server started without --model_config_file_poll_wait_seconds (0, the
# default, reads the file once). "backend not_found" alone left the operator guessing.
UNKNOWN_MODEL_HINT = {
    BackendFailure.NOT_FOUND: (
        ": the model server has no version of this model (none in its folder, or the model "
        "is not in the config the server read: a model added to models.config is loaded "
        "only by a server that re-reads the file, --model_config_file_poll_wait_seconds N, "
        "or after its restart)"
    )
}


def unrouted_error(model: str, state: ModelState, retry_after_seconds: int) -> GatewayError:
    """The 503 for a model without a routed version, saying why (``Retry-After`` set).

    In this order: the model server could not be asked (unreachable, too slow, or failed:
    only the failure's kind is told), it has no AVAILABLE version, a version's check against
    its spec is pending (the server was busy), or every AVAILABLE version failed that check
    (``detail``: each version's short reason, as in ``GET /v1/models``). The server's own
    text is logged with the request id, never answered.
    """
    available = [status.version for status in state.statuses if status.state == AVAILABLE]
    pending = [version for version in available if version not in state.unfit]
    detail: list[dict[str, object]] = []
    if not state.backend_answered:
        default = "the model server failed to report the model's versions"
        known = STATUS_FAILURES.get(state.failure) if state.failure else None
        message = (known or default).format(model=model) + "; retry later"
    elif not available:
        message = f"the model server has no version of model '{model}' loaded; retry later"
        detail = [{"version": item.version, "state": item.state} for item in state.statuses]
    elif pending:
        message = (
            f"model '{model}' version {pending[-1]} is loaded but not yet checked against its "
            "serving spec (the model server was busy); retry later"
        )
    else:
        message = f"no loaded version of model '{model}' fits its serving spec"
        detail = [{"version": version, "reason": state.unfit[version]} for version in available]
    # The JSON log line carries the request id; the server's own words are only here.
    server_text = state.failure_text or [
        (item.version, item.state, item.error) for item in state.statuses
    ]
    LOGGER.warning("%s: 503 %s; model server: %s", model, message, server_text)
    return retry_later(message, retry_after_seconds, detail)


class StatusAsker:
    """Each model's ``model_status`` answer, or the BackendError it failed with, asked in
    threads of their own (greenlets under the gevent worker, whose gRPC calls yield to the
    hub): :meth:`serving.gateway.registry.ModelRegistry.refresh_models` says why.

    The threads are kept for the process's next polls: a pool made per poll started a
    thread per model every ``GATEWAY_VERSION_POLL_SECONDS``, ~2% of a worker's CPU per qa
    request at one client (issue 9, round 18). Idle, they wait on the pool's queue (no
    wake-ups); they end with the pool (:meth:`close`, or the asker dropped).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def statuses(
        self, backend: Backend, models: tuple[str, ...]
    ) -> dict[str, list[VersionStatus] | BackendError]:
        """Every model's answer, asked at once (one model: in the calling thread)."""

        def ask(model: str) -> list[VersionStatus] | BackendError:
            try:
                return backend.model_status(model)
            except BackendError as error:
                return error

        if len(models) < 2:
            return {model: ask(model) for model in models}
        return dict(zip(models, self._executor().map(ask, models), strict=True))

    def close(self) -> None:
        """Let the pool's threads end (a later poll makes a new pool)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _executor(self) -> ThreadPoolExecutor:
        """This process's pool (a forked child's own: the parent's threads are not in it)."""
        with self._lock:
            if self._pool is None or self._pid != current_pid():
                self._pool = ThreadPoolExecutor(STATUS_THREADS, "model-status")
                self._pid = current_pid()
            return self._pool


# States of a version the model server is still bringing up (TF Serving's names).
COMING_UP = frozenset({"START", "LOADING"})


def unserved_version_error(
    backend: Backend, model: str, version: int, retry_after_seconds: int
) -> GatewayError | None:
    """Why the model server does not serve a pinned version, when that is its own state:
    the version failed to load (TF Serving's END with its load's error, from GetModelStatus)
    or is still loading. A 503 with ``Retry-After`` (the server retries a failed load, and
    then loads the version: not the client's fault), where the predict call's NOT_FOUND alone
    was a 404 as for a version that does not exist. None: the server does not know the
    version, or cannot be asked now (the caller's own error stands). The server's load error
    is raw TensorFlow text with its paths: logged, never answered."""
    try:
        statuses = backend.model_status(model)
    except BackendError as error:
        LOGGER.info("%s version %d: status unknown: %s", model, version, error.message)
        return None
    found = next((status for status in statuses if status.version == version), None)
    if found is None:
        return None
    if found.state in COMING_UP:
        why = "is still loading on the model server"
    elif found.state == END and found.error:
        why = "failed to load on the model server"
    else:
        return None
    LOGGER.warning("%s version %d %s: %s %s", model, version, why, found.state, found.error)
    return retry_later(
        f"model '{model}' version {version} {why}; retry later",
        retry_after_seconds,
        [{"version": version, "state": found.state}],
    )
