"""One version's state as GetModelStatus reports it (TF Serving's START, LOADING, AVAILABLE,
UNLOADING, END), with its loaded servable and batching queue while AVAILABLE, and the
bookkeeping of failed loads (:meth:`VersionState.failed_load`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import grpc

from serving.modelserver.batching import Batcher
from serving.modelserver.errors import not_found
from serving.modelserver.servable import LoadedVersion
from serving.modelserver.versions import RetryPolicy
from serving.tensor_batches import Tensors

Fingerprint = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class VersionState:
    """What GetModelStatus reports for one version, plus the loaded servable if AVAILABLE."""

    version: int
    state: str  # START, LOADING, AVAILABLE, UNLOADING, END (TF Serving's names)
    error_code: int = 0  # canonical status code number, 0 = OK
    error_message: str = ""
    servable: LoadedVersion | None = None
    batcher: Batcher | None = None
    fingerprint: Fingerprint = ()  # folder files at a failed load
    failures: int = 0  # failed loads since the folder last changed
    retry_at: float = 0.0  # time.monotonic() of the next retry

    def predict(self, signature: str, inputs: Tensors, deadline: float | None = None) -> Tensors:
        """Run a (validated) request, through the batching queue when there is one; a request
        split into batches (:meth:`Batcher.submit`) stops at ``deadline`` (``time.monotonic()``)."""
        if self.servable is None:
            raise not_found(f"version {self.version} is not loaded")
        if self.batcher is not None:
            return self.batcher.submit(signature or "serving_default", inputs, deadline)
        return self.servable.run(signature, inputs)

    @classmethod
    def failed_load(
        cls,
        version: int,
        error: Exception,
        previous: VersionState | None,
        fingerprint: Fingerprint,
        retry: RetryPolicy,
    ) -> VersionState:
        """END after a failed load: a short reason for clients (the details go to the log),
        the failures counted while the folder's files stay the same (TF Serving's
        ``--max_num_load_retries``), the next retry ``retry.interval_seconds`` away."""
        code = getattr(error, "error_code", grpc.StatusCode.UNKNOWN.value[0])
        same_files = previous is not None and previous.fingerprint == fingerprint
        failures = previous.failures + 1 if same_files and previous else 1
        reason = f"Loading failed ({type(error).__name__}); details in the model server log"
        if failures > retry.max_retries:
            reason += "; no retries left until its files change"
        return cls(
            version,
            "END",
            int(code) or grpc.StatusCode.UNKNOWN.value[0],
            reason,
            fingerprint=fingerprint,
            failures=failures,
            retry_at=time.monotonic() + retry.interval_seconds,
        )
