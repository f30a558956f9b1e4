"""Which version each request goes to, and that version's assets (hot reload)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from serving.gateway.assets import AssetsError, VersionAssets, load_assets
from serving.gateway.backends import Backend, VersionSelector, VersionStatus
from serving.gateway.backends.base import AVAILABLE
from serving.gateway.errors import BackendError, BackendFailure, GatewayError

LOGGER = logging.getLogger("serving.gateway.registry")


@dataclass
class ModelState:
    """What the gateway knows about one model (replaced whole, never edited in place)."""

    statuses: list[VersionStatus] = field(default_factory=list)
    routed: VersionAssets | None = None
    error: str = ""
    backend_answered: bool = True


class ModelRegistry:
    """Polls the backend for AVAILABLE versions; routes to the newest one with loaded assets.

    A version's tokenizer and labels are loaded before any request is routed to it, and each
    request pins the exact version it was tokenised for.
    """

    def __init__(
        self,
        backend: Backend,
        model_repo: Path,
        models: tuple[str, ...],
        poll_seconds: float,
        retry_after_seconds: int = 1,
    ) -> None:
        self.backend = backend
        self.model_repo = model_repo
        self.models = models
        self.poll_seconds = poll_seconds
        self.retry_after_seconds = retry_after_seconds
        self._lock = threading.Lock()
        self._states: dict[str, ModelState] = {}
        self._assets: dict[tuple[str, int], VersionAssets] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def start(self) -> None:
        """Start this process's poller thread (once per process, after any fork)."""
        with self._lock:
            if self._thread is not None and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="version-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the poller thread."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)

    def refresh(self) -> dict[str, str]:
        """Poll every model once; return the problems found (model -> reason)."""
        problems = {}
        for model in self.models:
            state = self.refresh_model(model)
            if state.routed is None or not state.backend_answered:
                problems[model] = state.error or "no AVAILABLE version"
        return problems

    def refresh_model(self, model: str) -> ModelState:
        """Ask the backend for the model's versions, load new assets, pick the route."""
        previous = self.state(model)
        try:
            statuses = self.backend.model_status(model)
        except BackendError as error:
            LOGGER.warning("status of %s failed: %s", model, error.message)
            # Clients see the failure kind only; the server's raw text stays in the log.
            reason = f"backend {error.failure.value}"
            # Keep routing to the last known version: the next poll or request may succeed.
            state = ModelState(previous.statuses, previous.routed, reason, backend_answered=False)
            self._set_state(model, state)
            return state
        available = sorted(status.version for status in statuses if status.state == AVAILABLE)
        errors = []
        routed = None
        for version in reversed(available):
            try:
                routed = self.assets(model, version)
                break
            except GatewayError as error:
                errors.append(error.message)
        if routed is not None and (
            previous.routed is None or previous.routed.version != routed.version
        ):
            LOGGER.info("routing %s to version %d", model, routed.version)
        state = ModelState(statuses, routed, "; ".join(errors))
        self._set_state(model, state)
        self._forget_unserved(model, {status.version for status in statuses})
        return state

    def state(self, model: str) -> ModelState:
        """The last known state of a model."""
        with self._lock:
            return self._states.get(model, ModelState())

    def assets(self, model: str, version: int) -> VersionAssets:
        """A version's assets, loaded from the model repo on first use."""
        key = (model, version)
        with self._lock:
            cached = self._assets.get(key)
        if cached is not None:
            return cached
        try:
            loaded = load_assets(self.model_repo, model, version)
        except AssetsError as error:
            LOGGER.warning("%s", error)
            raise GatewayError(
                404, f"model {model!r} version {version} has no usable assets"
            ) from error
        with self._lock:
            return self._assets.setdefault(key, loaded)

    def resolve(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> VersionAssets:
        """The assets of the version a request runs on (the request then pins that version)."""
        if model not in self.models:
            raise GatewayError(404, f"unknown model {model!r}")
        if selector.version is not None:
            return self.assets(model, selector.version)
        if selector.label:
            return self.assets(model, self._label_version(model, selector, request_id))
        routed = self.state(model).routed or self.refresh_model(model).routed
        if routed is None:
            raise GatewayError(
                503,
                f"model {model!r} has no available version",
                headers={"Retry-After": str(self.retry_after_seconds)},
            )
        return routed

    def _label_version(self, model: str, selector: VersionSelector, request_id: str | None) -> int:
        try:
            return self.backend.model_metadata(model, selector, request_id).version
        except BackendError as error:
            # TF Serving answers INVALID_ARGUMENT for a label it does not know.
            if error.failure in (BackendFailure.INVALID_ARGUMENT, BackendFailure.NOT_FOUND):
                LOGGER.info("label lookup failed: %s", error.message)
                raise GatewayError(
                    404, f"model {model!r} has no version labelled {selector.label!r}"
                ) from error
            raise

    def _set_state(self, model: str, state: ModelState) -> None:
        with self._lock:
            self._states[model] = state

    def _forget_unserved(self, model: str, served: set[int]) -> None:
        # Assets of retired versions are dropped; a pinned request reloads them if needed.
        with self._lock:
            for key in [key for key in self._assets if key[0] == model and key[1] not in served]:
                del self._assets[key]

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # the poller must survive anything; the next poll retries
                LOGGER.exception("version poll failed")
