"""What the gateway knows of each served version: its runtime unit, whether it fits its spec,
and the assets and folder that verdict was reached on (:class:`VersionVerdicts`).

The registry (:mod:`serving.gateway.registry`) asks it for a version's verdict at each poll
and for the runtime of a pinned request (a label resolved with the backend first); a
version's knowledge lasts while the model server keeps it loaded.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from serving import contract
from serving.gateway.asset_checks import AssetsUnreadableNowError
from serving.gateway.backends import Backend, VersionSelector
from serving.gateway.checks import SlowVersionError, check_fit
from serving.gateway.errors import BackendError, BackendFailure, GatewayError, echo, retry_later
from serving.gateway.runtime import (
    Fingerprint,
    ModelRuntime,
    UnfitVersionError,
    assets_fingerprint,
    load_runtime,
)
from serving.gateway.settings import GatewaySettings
from serving.gateway.sources import VersionSources

LOGGER = logging.getLogger("serving.gateway.registry")
Key = tuple[str, int]  # (model, version)
# A version too slow for the fit check's deadline is checked again after this many seconds,
# doubling per miss up to SLOW_RETRY_MAX_SECONDS: each check can hold the poller for
# GATEWAY_CHECK_TIMEOUT_SECONDS, and a busy server may answer in time later.
SLOW_RETRY_SECONDS = 60.0
SLOW_RETRY_MAX_SECONDS = 3600.0


class VersionVerdicts:
    """Per ``(model, version)``: the runtime (loaded once), the verdict (``""`` fits, else the
    reason clients see), the assets fingerprint it was reached on (an unfit version is checked
    again when they change) and its folder (:class:`serving.gateway.sources.VersionSources`)."""

    def __init__(self, backend: Backend, settings: GatewaySettings) -> None:
        self.backend = backend
        self.settings = settings
        self.model_repo = settings.model_repo
        self._lock = threading.Lock()
        self._runtimes: dict[Key, ModelRuntime] = {}
        self._verdicts: dict[Key, str] = {}
        self._checked_files: dict[Key, Fingerprint] = {}
        # (monotonic instant of the next check, delay after it) of a too slow version.
        self._slow: dict[Key, tuple[float, float]] = {}
        # One check of a version at a time: pinned requests (and listings) that meet it
        # unchecked wait for the check under way instead of sending its probes again, each
        # with GATEWAY_CHECK_TIMEOUT_SECONDS, to a model server that is slow already.
        self._checking: dict[Key, threading.Lock] = {}
        # Versions whose last check was postponed while served (the backend busy, files
        # unreadable now): a request pinned to one meanwhile is a 503, never run unchecked.
        self._postponed: set[Key] = set()
        self.clock = time.monotonic  # replaceable: the tests move time on
        self.sources = VersionSources()

    def cached(self, key: Key) -> ModelRuntime | None:
        """The version's runtime if loaded (a dict read: once per request, no lock)."""
        return self._runtimes.get(key)

    def verdict(
        self, model: str, version: int, folder: Path | None, check: bool = True
    ) -> str | None:
        """``""`` when the version fits, the reason when not, None when it could not be
        checked (the backend busy). An unfit version is checked again once its assets change
        (a copy that was still landing, a fixed spec or tokenizer), as the model server
        retries a failed load; one too slow for the check's deadline (``SlowVersionError``)
        also after a backoff (:data:`SLOW_RETRY_SECONDS`, doubling). ``check`` False: None
        instead of a check that is due (the caller must not wait for one)."""
        key = (model, version)
        with self._lock:
            known, files = self._verdicts.get(key), self._checked_files.get(key)
            slow = self._slow.get(key)
        if known == "":
            return known
        current = assets_fingerprint(self.model_repo, model, version)
        if known is not None and files == current:
            if slow is None or self.clock() < slow[0]:
                return known
            LOGGER.info("%s version %d was too slow: checking it again", model, version)
        elif known is not None:
            LOGGER.info("%s version %d: its assets changed, checking it again", model, version)
            with self._lock:
                self._runtimes.pop(key, None)
        if not check:
            return None
        with self._lock:
            gate = self._checking.setdefault(key, threading.Lock())
        with gate:
            with self._lock:  # checked by another caller while this one waited
                known, files = self._verdicts.get(key), self._checked_files.get(key)
                slow = self._slow.get(key)
            fresh = known is not None and files == current
            if fresh and (slow is None or self.clock() < slow[0]):
                return known
            return self._check(key, folder, current, files, slow)

    def _check(
        self,
        key: Key,
        folder: Path | None,
        current: Fingerprint,
        files: Fingerprint | None,
        slow: tuple[float, float] | None,
    ) -> str | None:
        model, version = key
        delay = slow[1] if slow is not None and files == current else SLOW_RETRY_SECONDS
        too_slow = False
        try:
            check_fit(self.backend, self.load(model, version))
            verdict = ""
        except SlowVersionError as error:  # the check logged why, and what to do
            verdict, too_slow = error.reason, True
            with self._lock:
                self._slow[key] = (
                    self.clock() + delay,
                    min(delay * 2, SLOW_RETRY_MAX_SECONDS),
                )
        except UnfitVersionError as error:
            LOGGER.warning("%s version %d is not routed: %s", model, version, error.reason)
            verdict = error.reason
        except BackendError as error:
            LOGGER.info("%s version %d: check postponed: %s", model, version, error.message)
            if error.failure is not BackendFailure.NOT_FOUND:  # not served: the call says so
                self._postponed.add(key)
            return None
        except AssetsUnreadableNowError as error:  # the process's state, not the files'
            LOGGER.warning("%s version %d: check postponed: cannot read %s", model, version, error)
            self._postponed.add(key)
            return None
        self._postponed.discard(key)
        with self._lock:
            self._verdicts[key] = verdict
            self._checked_files[key] = current
            if not too_slow:
                self._slow.pop(key, None)
        self.sources.record(key, folder, verdict == "")
        return verdict

    def pinned_verdict(self, model: str, version: int) -> str | None:
        """A pinned version's verdict; one not checked yet (loaded since the last poll) is
        checked now, never called unchecked. None: it could not be (no such folder, not
        served), and the call itself says why. Raises GatewayError 503 when its check was
        postponed (the backend busy, its files unreadable now)."""
        verdict = self._verdicts.get((model, version))
        if verdict is not None:
            return verdict
        try:
            folder = self._folders(model).get(version)
        except AssetsUnreadableNowError:
            return None  # runtime() says why
        if folder is None:
            return None
        verdict = self.verdict(model, version, folder)
        if verdict is None and (model, version) in self._postponed:
            # Found by the adversarial repo pass 6: a check postponed (its metadata call
            # failed once) let the request run on the version unchecked.
            raise retry_later(
                f"model {model!r} version {version} is not checked against its spec yet (the "
                "model server was busy, or its files could not be read now); retry later",
                self.settings.retry_after_seconds,
            )
        return verdict

    def pinned_runtime(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelRuntime:
        """The runtime of the version a request pinned (``selector``: a version, or a label
        the backend resolves), checked first (:meth:`pinned_verdict`). A label the backend
        does not know is a 404; a version not routed (unfit, pending, or its folder refused:
        ``sources.refused``) is a 404 saying why, and named by a label a 503 with
        ``Retry-After``, since the label is the server's (adversarial repo pass 7: it was a
        404, as a version not served)."""
        version = selector.version
        if version is None:
            version = self._label_version(model, selector, request_id)
        reason = self.pinned_verdict(model, version) or self.sources.refused((model, version))
        if reason and selector.label:
            raise retry_later(
                f"model {model!r} label {echo(selector.label)!r} names version {version}, "
                f"which is not routed: {reason}",
                self.settings.retry_after_seconds,
            )
        if reason:
            raise GatewayError(404, f"model {model!r} version {version} is not routed: {reason}")
        return self.runtime(model, version)

    def _label_version(self, model: str, selector: VersionSelector, request_id: str | None) -> int:
        try:
            return self.backend.model_metadata(model, selector, request_id).version
        except BackendError as error:
            # TF Serving answers INVALID_ARGUMENT for a label it does not know, and NOT_FOUND
            # for one it knows whose version is not loaded (removed from disk while the label
            # map keeps it: "Servable not found for request: Specific(qa, 1)"). That label is
            # the server's, as for an unfit version: a 503, not the client's 404 "no version
            # labelled" (found by newuser10).
            if error.failure is BackendFailure.NOT_FOUND:
                LOGGER.warning("label %r of %s: %s", selector.label, model, error.message)
                raise retry_later(
                    f"model {model!r} label {echo(selector.label or '')!r} names a version the "
                    "model server has not loaded (unloaded since, or not loaded yet)",
                    self.settings.retry_after_seconds,
                ) from error
            if error.failure is BackendFailure.INVALID_ARGUMENT:
                LOGGER.info("label lookup failed: %s", error.message)
                raise GatewayError(
                    404, f"model {model!r} has no version labelled {selector.label!r}"
                ) from error
            raise

    def runtime(self, model: str, version: int) -> ModelRuntime:
        """A version's runtime, loaded from the model repo on first use (404 if it cannot be)."""
        cached = self._runtimes.get((model, version))
        if cached is not None:
            return cached
        try:
            if version not in self._folders(model):
                raise GatewayError(404, f"model {model!r} has no version {version}")
            return self.load(model, version)
        except UnfitVersionError as error:
            raise GatewayError(
                404, f"model {model!r} version {version} has no usable assets: {error.reason}"
            ) from error
        except AssetsUnreadableNowError as error:
            LOGGER.warning("%s version %d: cannot read %s", model, version, error)
            raise retry_later(
                f"model {model!r} version {version} cannot be loaded now (the gateway is out "
                "of file descriptors or memory); retry later",
                self.settings.retry_after_seconds,
            ) from error

    def _folders(self, model: str) -> dict[int, Path]:
        """The model's version folders; :class:`AssetsUnreadableNowError` when the process
        cannot list them now (no descriptor left: not a model without versions)."""
        try:
            return contract.version_dirs(
                contract.model_dir(self.model_repo, model), transient_errors=True
            )
        except OSError as error:
            raise AssetsUnreadableNowError(f"the folder of {model}: {error.strerror}") from error

    def load(self, model: str, version: int) -> ModelRuntime:
        """The version's runtime, read once (:func:`serving.gateway.runtime.load_runtime`).

        Raises :class:`UnfitVersionError` for assets that cannot be served."""
        key = (model, version)
        with self._lock:
            cached = self._runtimes.get(key)
        if cached is not None:
            return cached
        loaded = load_runtime(self.model_repo, model, version, self.settings)
        with self._lock:
            return self._runtimes.setdefault(key, loaded)

    def forget(self, model: str, served: set[int]) -> None:
        """Drop what is known of the model's versions outside ``served``: a version loaded
        again is read from the files it is loaded from then; a pinned request reloads."""
        self.sources.forget(model, served)
        with self._lock:
            caches = (self._runtimes, self._verdicts, self._checked_files, self._slow)
            for cache in (*caches, self._checking):
                for key in [key for key in cache if key[0] == model and key[1] not in served]:
                    del cache[key]
            self._postponed -= {
                key for key in self._postponed if key[0] == model and key[1] not in served
            }
