"""Version management like TF Serving: poll model folders, load, warm up, swap, unload.

A version is loaded and warmed up before it is AVAILABLE; an old version is unloaded only
once a wanted version is AVAILABLE (availability-preserving), so no request fails during a
swap. Folders still being written (no saved_model.pb, hidden ``.staging-*``) are ignored and
a broken SavedModel is reported as END with its error and never takes traffic.
"""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from serving.modelserver.batching import Batcher, Tensors
from serving.modelserver.config import BatchingSettings, ModelSettings
from serving.modelserver.errors import invalid_argument, not_found
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.servable import LoadedVersion, is_complete_version

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionState:
    """What GetModelStatus reports for one version, plus the loaded servable if AVAILABLE."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (TF Serving's names)
    error_code: int = 0  # canonical status code number, 0 = OK
    error_message: str = ""
    servable: LoadedVersion | None = None
    batcher: Batcher | None = None
    source_mtime: float = 0.0  # saved_model.pb mtime of a failed load, to retry on change

    def predict(self, signature: str, inputs: Tensors) -> Tensors:
        """Run a (validated) request, through the batching queue when there is one."""
        if self.servable is None:
            raise not_found(f"version {self.version} is not loaded")
        if self.batcher is not None:
            return self.batcher.submit(signature or "serving_default", inputs)
        return self.servable.run(signature, inputs)


def list_versions(base_path: Path) -> list[int]:
    """Complete version folders (numeric name, SavedModel file present) under base_path."""
    if not base_path.is_dir():
        return []
    return sorted(
        int(child.name)
        for child in base_path.iterdir()
        if child.name.isdigit() and child.is_dir() and is_complete_version(child)
    )


class ModelManager:
    """Owns every model's versions and the poller thread that keeps them current."""

    def __init__(
        self,
        models: list[ModelSettings],
        metrics: ServerMetrics,
        batching: BatchingSettings | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self._models = {model.name: model for model in models}
        self._metrics = metrics
        self._batching = batching
        self._poll_seconds = poll_seconds
        self._states: dict[str, dict[int, VersionState]] = {name: {} for name in self._models}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None

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
        for name, states in self._states.items():
            for version in list(states):
                self._unload(name, version)

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
        model = self._models.get(name)
        if label:
            labels = model.label_map() if model else {}
            if label not in labels:
                raise invalid_argument(f"Unrecognized servable version label: {label}")
            version = labels[label]
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
        for model in self._models.values():
            try:
                self._reconcile(model)
            except Exception:  # one model's trouble must not stop the others' updates
                LOG.exception("updating model %s failed", model.name)

    def _poll_loop(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self.poll_once()

    def _reconcile(self, model: ModelSettings) -> None:
        wanted = model.policy.select(list_versions(model.base_path))
        for version in sorted(wanted):
            if self._stopping.is_set():
                return
            current = self._states[model.name].get(version)
            if current is None or (current.state == "END" and self._should_retry(model, current)):
                self._load(model, version)
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

    def _should_retry(self, model: ModelSettings, state: VersionState) -> bool:
        if state.error_code == 0:  # unloaded earlier and wanted again
            return True
        return _mtime(model.base_path / str(state.version)) != state.source_mtime

    def _set(self, name: str, state: VersionState) -> None:
        with self._lock:
            self._states[name][state.version] = state

    def _load(self, model: ModelSettings, version: int) -> None:
        path = model.base_path / str(version)
        LOG.info("loading %s version %d from %s", model.name, version, path)
        self._set(model.name, VersionState(version, "LOADING"))
        try:
            servable = LoadedVersion(model.name, version, path)
            warmed = servable.warm_up()
        except Exception as error:
            LOG.error("loading %s version %d failed: %s", model.name, version, error)
            code = getattr(error, "error_code", grpc.StatusCode.UNKNOWN.value[0])
            failed = VersionState(version, "END", int(code), f"{type(error).__name__}: {error}")
            self._set(model.name, replace(failed, source_mtime=_mtime(path)))
            return
        batcher = self._make_batcher(servable) if self._batching else None
        self._set(
            model.name, VersionState(version, "AVAILABLE", servable=servable, batcher=batcher)
        )
        LOG.info("%s version %d AVAILABLE (%d warmup requests)", model.name, version, warmed)

    def _make_batcher(self, servable: LoadedVersion) -> Batcher:
        assert self._batching is not None
        labels = (servable.name, str(servable.version))
        return Batcher(
            servable.run,
            self._batching,
            observe_batch=self._metrics.batch_size.labels(*labels).observe,
            observe_depth=self._metrics.queue_depth.labels(*labels).set,
        )

    def _unload(self, name: str, version: int) -> None:
        with self._lock:
            state = self._states[name].get(version)
            if state is None or state.servable is None:
                return
            self._states[name][version] = VersionState(version, "UNLOADING")
        LOG.info("unloading %s version %d", name, version)
        if state.batcher is not None:
            state.batcher.close()
        del state  # in-flight requests hold their own reference until they finish
        gc.collect()
        self._set(name, VersionState(version, "END"))


def _mtime(path: Path) -> float:
    try:
        return (path / "saved_model.pb").stat().st_mtime
    except OSError:
        return 0.0
