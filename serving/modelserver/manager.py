"""Version management like TF Serving: poll model folders, load, warm up, swap, unload.

A version is loaded and warmed up before it is AVAILABLE; an old version is unloaded only
once a wanted version is AVAILABLE (availability-preserving), so no request fails during a
swap. Only folders named by ASCII digits in int64 range are versions (``00000123`` is 123);
others are skipped with a warning. Folders without saved_model.pb are skipped (with one
warning saying why), unless loaded (``versions.list_versions``). A failed load is END
with a short reason (details in the log) and is retried as TF Serving does
(``--max_num_load_retries`` every ``--load_retry_interval_micros``), and at once whenever a
file in its folder changes (a copy that was still under way). The model list itself can be
replaced while running (``update_models``: models.config re-read).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path

from serving.modelserver.batch_scheduler import BatchScheduler
from serving.modelserver.config import BatchingSettings, ModelSettings
from serving.modelserver.errors import invalid_argument, not_found
from serving.modelserver.labels import VersionLabels
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.version_load import VersionLoader
from serving.modelserver.version_state import VersionState
from serving.modelserver.versions import RetryPolicy, folder_fingerprint, list_versions

LOG = logging.getLogger(__name__)


class ModelManager:
    """Owns every model's versions and the poller thread that keeps them current."""

    def __init__(
        self,
        models: list[ModelSettings],
        metrics: ServerMetrics,
        batching: BatchingSettings | None = None,
        poll_seconds: float = 1.0,
        retry: RetryPolicy | None = None,
        allow_unavailable_labels: bool = False,
    ) -> None:
        self._models = {model.name: model for model in models}
        self._metrics = metrics
        self._poll_seconds = poll_seconds
        self._retry = retry or RetryPolicy()
        self._states: dict[str, dict[int, VersionState]] = {name: {} for name in self._models}
        self._labels = VersionLabels(allow_unavailable_labels)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self._warned: set[tuple[str, str]] = set()
        self._empty: set[str] = set()  # models without a version folder, warned about
        self._pending_models: list[ModelSettings] | None = None
        # One pool of batch threads for every model version's queue, as TF Serving's.
        self._scheduler = BatchScheduler(batching.num_batch_threads) if batching else None
        self._loader = VersionLoader(metrics, self._retry, batching, self._scheduler)

    def start(self) -> None:
        """Load what is there now, then keep polling in a background thread."""
        self.poll_once()
        if self._poll_seconds > 0:
            self._poller = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
            self._poller.start()

    def stop(self) -> None:
        """Stop polling and unload every version (queued batches finish first)."""
        self._stopping.set()
        if self._poller is not None:
            self._poller.join()
        for name, states in list(self._states.items()):
            for version in list(states):
                self._unload(name, version)
        if self._scheduler is not None:
            self._scheduler.close()

    def flush_batches(self) -> None:
        """Send every queued batch at once (the first step of a shutdown)."""
        if self._scheduler is not None:
            self._scheduler.flush()

    def update_models(self, models: list[ModelSettings]) -> None:
        """Serve this model list from the next poll on (new models load, removed ones unload)."""
        with self._lock:
            self._pending_models = list(models)
        if self._poller is None:
            self.poll_once()

    def _apply_model_list(self) -> None:
        with self._lock:
            models, self._pending_models = self._pending_models, None
        if models is None:
            return
        wanted = {model.name: model for model in models}
        for name in [name for name in self._models if name not in wanted]:
            LOG.info("model %s removed from the config: unloading it", name)
            for version in list(self._states[name]):
                self._unload(name, version)
            with self._lock:
                del self._models[name], self._states[name]
            self._metrics.forget_model(name)
        with self._lock:
            for name, model in wanted.items():
                if name not in self._models:
                    LOG.info("model %s added by the config", name)
                    self._states[name] = {}
                self._models[name] = model

    def model_names(self) -> list[str]:
        """Names of the configured models."""
        return list(self._models)

    def all_available(self) -> bool:
        """True when every configured model has at least one AVAILABLE version."""
        with self._lock:
            return all(
                any(state.state == "AVAILABLE" for state in states.values())
                for states in self._states.values()
            )

    def resolve(self, name: str, version: int | None = None, label: str = "") -> VersionState:
        """The AVAILABLE version a request asks for (latest if none), or TF Serving's error."""
        if label:
            # The map in force, which may lag models.config: see serving/modelserver/labels.py.
            version = self._labels.version(name, label) if name in self._models else None
            if version is None:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
        with self._lock:
            states = self._states.get(name, {})
            ready = {v: s for v, s in states.items() if s.state == "AVAILABLE"}
            if version is None:
                if ready:
                    return ready[max(ready)]
                raise not_found(f"Servable not found for request: Latest({name})")
            if version in ready:
                return ready[version]
        raise not_found(f"Servable not found for request: Specific({name}, {version})")

    def statuses(self, name: str, version: int | None = None) -> list[VersionState]:
        """Version states for GetModelStatus, newest first, or NOT_FOUND."""
        with self._lock:
            states = dict(self._states.get(name, {}))
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [states[version]]
        return [states[key] for key in sorted(states, reverse=True)]

    def poll_once(self) -> None:
        """Bring every model's loaded versions in line with its folder and version policy."""
        self._apply_model_list()
        for model in list(self._models.values()):
            try:
                self._reconcile(model)
            except Exception:  # one model's trouble must not stop the others' updates
                LOG.exception("updating model %s failed", model.name)
        wanted = {model.name: model.label_map() for model in self._models.values()}
        self._labels.update(wanted, self._is_available)

    def _is_available(self, name: str, version: int) -> bool:
        with self._lock:
            state = self._states.get(name, {}).get(version)
        return state is not None and state.state == "AVAILABLE"

    def _poll_loop(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self.poll_once()

    def _reconcile(self, model: ModelSettings) -> None:
        try:
            with self._lock:
                loaded = [v for v, s in self._states[model.name].items() if s.servable]
            folders, skipped = list_versions(model.base_path, loaded)
            unreadable = ""
        except OSError as error:  # missing or unlistable: no versions to aspire, none to drop
            folders, skipped = {}, {}
            unreadable = f" (it cannot be listed: {error.strerror or type(error).__name__})"
        for name, reason in skipped.items():
            key = (model.name, f"{name}: {reason}")
            if key not in self._warned:  # again if its reason changes
                self._warned.add(key)
                LOG.warning("model %s: skipping folder %r (%s)", model.name, name, reason)
        if not folders and model.name not in self._empty:  # once, until versions appear
            LOG.warning(  # TF Serving's words: a missing or empty base path serves nothing
                "No versions of servable %s found under base path %s%s. Did you forget to name "
                "your leaf directory as a number (eg. '/1/')?",
                model.name,
                model.base_path,
                unreadable,
            )
        self._empty = self._empty - {model.name} if folders else self._empty | {model.name}
        if unreadable:
            # A volume being remounted, a folder moved away and back: TF Serving's poller emits
            # nothing for such a base path (PollFileSystemForServable fails), so the versions
            # it loaded keep serving; only an existing folder without versions unloads them.
            return
        wanted = model.policy.select(list(folders))
        for version in set(model.policy.versions) - set(folders) if model.policy.versions else ():
            if (model.name, f"specific {version}") not in self._warned:  # once per version
                self._warned.add((model.name, f"specific {version}"))
                LOG.warning(  # TF Serving's AspireSpecificVersions says so too; it was silent
                    "Version %d of servable %s, which was requested to be served as a "
                    "'specific' version in the servable's version policy, was not found in "
                    "the file system",
                    version,
                    model.name,
                )
        for version in sorted(wanted):
            if self._stopping.is_set():
                return
            current = self._states[model.name].get(version)
            path = folders[version]
            retry = current is not None and current.state == "END"
            if current is None or (retry and self._should_retry(current, path)):
                self._load(model, version, path, current)
        states = self._states[model.name]
        wanted_ready = any(states[v].state == "AVAILABLE" for v in wanted if v in states)
        for version, state in list(states.items()):
            if version in wanted or state.state != "AVAILABLE":
                continue
            if wanted_ready or not wanted:
                self._unload(model.name, version)
        self._metrics.available_versions.labels(model.name).set(
            sum(1 for state in states.values() if state.state == "AVAILABLE")
        )

    def _should_retry(self, state: VersionState, path: Path) -> bool:
        if state.error_code == 0:  # unloaded earlier and wanted again
            return True
        if folder_fingerprint(path) != state.fingerprint:  # a copy landed: try at once
            return True
        return state.failures <= self._retry.max_retries and time.monotonic() >= state.retry_at

    def _set(self, name: str, state: VersionState) -> None:
        with self._lock:
            self._states[name][state.version] = state

    def _load(
        self, model: ModelSettings, version: int, path: Path, previous: VersionState | None
    ) -> None:
        self._set(model.name, VersionState(version, "LOADING"))
        self._set(model.name, self._loader.load(model.name, version, path, previous))

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            state = self._states[name].get(version)
            if state is None or state.servable is None:
                return
            self._states[name][version] = VersionState(version, "UNLOADING")
        LOG.info("unloading %s version %d", name, version)
        if state.batcher is not None:
            state.batcher.close()
        self._metrics.forget_version(name, str(version))  # after the queue's last depth
        del state  # in-flight requests hold their own reference until they finish
        gc.collect()
        self._set(name, VersionState(version, "END"))
