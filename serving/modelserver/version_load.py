"""Loading one version for :class:`serving.modelserver.manager.ModelManager`: the SavedModel
read and warmed up (AVAILABLE, with its batching queue when batching is on), or END with a
short reason after a failure (the details, which file failed, go to the log)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from serving.contract import ASSETS_DIR, WARMUP_FILE
from serving.modelserver.batch_scheduler import BatchScheduler
from serving.modelserver.batching import Batcher
from serving.modelserver.config import BatchingSettings
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.servable import LoadedVersion
from serving.modelserver.version_state import VersionState
from serving.modelserver.versions import RetryPolicy, check_regular_files, folder_fingerprint

# The manager's logger: operators (and tests) read a version's load with its other lines.
LOG = logging.getLogger("serving.modelserver.manager")


@dataclass(frozen=True)
class VersionLoader:
    """What a load needs besides the version: the retry policy of failed loads, the batching
    settings and shared batch threads (None: no batching), the metrics of its queue."""

    metrics: ServerMetrics
    retry: RetryPolicy
    batching: BatchingSettings | None = None
    scheduler: BatchScheduler | None = None

    def load(
        self, name: str, version: int, path: Path, previous: VersionState | None
    ) -> VersionState:
        """The version's AVAILABLE state, or its END state after a failed load (``previous``:
        its state before, for the count of failures while its files stay the same)."""
        LOG.info("loading %s version %d from %s", name, version, path)
        fingerprint = folder_fingerprint(path)
        # Which file failed: TensorFlow's text names none ("Read less bytes than requested
        # [[{{node RestoreV2}}]]" for cut variables, "truncated record at 0" for a cut warmup).
        stage = "reading its SavedModel (saved_model.pb, variables/)"
        try:
            check_regular_files(path)  # a FIFO would hold the load (and every poll) forever
            servable = LoadedVersion(name, version, path)
            stage = f"replaying its warmup requests ({ASSETS_DIR}/{WARMUP_FILE})"
            warmed = servable.warm_up()
        except Exception as error:
            # The full error (server paths too) goes to the log, one line; clients get less.
            LOG.error(
                "loading %s version %d from %s failed while %s: %s",
                name,
                version,
                path,
                stage,
                " ".join(str(error).split()),
            )
            return VersionState.failed_load(version, error, previous, fingerprint, self.retry)
        batcher = self._make_batcher(servable) if self.batching else None
        LOG.info("%s version %d AVAILABLE (%d warmup requests)", name, version, warmed)
        return VersionState(version, "AVAILABLE", servable=servable, batcher=batcher)

    def _make_batcher(self, servable: LoadedVersion) -> Batcher:
        assert self.batching is not None
        labels = (servable.name, str(servable.version))
        return Batcher(
            servable.run,
            self.batching,
            observe_batch=self.metrics.batch_size.labels(*labels).observe,
            observe_depth=self.metrics.queue_depth.labels(*labels).set,
            scheduler=self.scheduler,
            splittable=servable.splittable,
            observe_split=partial(self.metrics.observe_split, *labels),
        )
