"""Version labels as TF Serving applies them: a new label map only onto loaded versions.

TF Serving's ``ServerCore::UpdateModelVersionLabelMap`` (run on every config load or reload)
refuses the whole map when a label names a version that is not AVAILABLE ("Request to
assign label to version 3 of model qa, which is not currently available for inference"),
and keeps the map it had: a label is moved only once its new version answers, so requests
by label never fail during a swap, and a label naming a missing version (a typo, a version
not published yet) is never applied. ``--allow_version_labels_for_unavailable_models``
lets a *new* label (one not assigned now) name a version not loaded yet; a label already
assigned still moves only to an AVAILABLE version. The local model server applied every
label as read, so a label naming a missing version was each of its requests' NOT_FOUND.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger("serving.modelserver.labels")

LabelMap = dict[str, dict[str, int]]  # model -> label -> version


class VersionLabels:
    """The label map in force, replaced only by a map every label of which may be applied."""

    def __init__(self, allow_unavailable: bool = False) -> None:
        self._allow_unavailable = allow_unavailable
        self._applied: LabelMap = {}
        self._refused: LabelMap | None = None  # the last map refused, logged once
        self._lock = threading.Lock()

    def update(self, wanted: LabelMap, available: Callable[[str, int], bool]) -> bool:
        """Apply ``wanted`` (every configured label) unless a label may not be applied now;
        ``available(model, version)``: that version is AVAILABLE. True when ``wanted`` is in
        force afterwards. A refusal is logged once per map (TF Serving's words); the caller
        asks again at its next poll, as TF Serving's config poller reloads."""
        wanted = {model: dict(labels) for model, labels in wanted.items() if labels}
        with self._lock:
            applied = self._applied
        if wanted == applied:
            return True
        problems = [
            f"Request to assign label {label!r} to version {version} of model {model}, "
            "which is not currently available for inference"
            for model, labels in sorted(wanted.items())
            for label, version in sorted(labels.items())
            if not available(model, version)
            and not (self._allow_unavailable and label not in applied.get(model, {}))
        ]
        if problems:
            if wanted != self._refused:
                self._refused = wanted
                LOG.error(
                    "version labels not applied, the current ones kept (%s): %s",
                    _describe(applied),
                    "; ".join(problems),
                )
            return False
        with self._lock:
            self._applied = wanted
        self._refused = None
        LOG.info("version labels now %s", _describe(self._applied))
        return True

    def version(self, model: str, label: str) -> int | None:
        """The version ``label`` of ``model`` names now, or None."""
        with self._lock:
            return self._applied.get(model, {}).get(label)


def _describe(labels: LabelMap) -> str:
    pairs = [
        f"{model}/{label}={version}"
        for model, named in sorted(labels.items())
        for label, version in sorted(named.items())
    ]
    return ", ".join(pairs) or "none"
