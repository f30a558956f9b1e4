"""The one interface every backend implements, and the retry policy they share."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from serving.contract import SIGNATURE_NAME
from serving.gateway.errors import BackendError

Arrays = dict[str, npt.NDArray[Any]]
Result = TypeVar("Result")
AVAILABLE = "AVAILABLE"
END = "END"  # TF Serving's state of a version unloaded (or that failed to load)
# The least time left before the deadline worth a retry (a refused connection fails in less).
MIN_ATTEMPT_SECONDS = 0.05


def seconds_left(deadline: float) -> float:
    """Seconds from now to ``deadline`` (a ``time.monotonic()`` instant), at least 1 ms."""
    return max(deadline - time.monotonic(), 0.001)


@dataclass(frozen=True)
class VersionSelector:
    """Which version of a model to call: a number, a TF Serving label, or neither (latest);
    and which of its signatures (TF Serving's ``ModelSpec``: version or label, and
    ``signature_name``; the gateway calls the one the version's serving spec names)."""

    version: int | None = None
    label: str | None = None
    signature_name: str = SIGNATURE_NAME

    def describe(self) -> str:
        """Human-readable form for logs and error messages."""
        if self.version is not None:
            return f"version {self.version}"
        return f"label {self.label!r}" if self.label else "the latest version"


@dataclass(frozen=True)
class VersionStatus:
    """One model version as the server reports it (state is TF Serving's state name)."""

    version: int
    state: str
    error: str = ""


@dataclass(frozen=True)
class TensorSpec:
    """A signature input or output: TF dtype name (``DT_INT32``) and shape (-1 = any)."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """A model version's signature named by the selector (GetModelMetadata's
    ``signature_def``): its inputs and outputs, empty when the version has no such signature;
    ``signatures``: the names of every signature it has."""

    name: str
    version: int
    inputs: dict[str, TensorSpec] = field(default_factory=dict)
    outputs: dict[str, TensorSpec] = field(default_factory=dict)
    signatures: tuple[str, ...] = ()


class Backend(Protocol):
    """A TF Serving-compatible model server, whatever the protocol."""

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Arrays:
        """Run the model's ``serving_default`` signature on int32 id matrices.

        ``timeout_seconds``: this call's deadline, retries included (None: the backend's,
        ``GATEWAY_REQUEST_TIMEOUT_SECONDS``); the fit check's probes pass their own
        (``GATEWAY_CHECK_TIMEOUT_SECONDS``): a version's load is not a client's request."""
        ...

    def model_status(self, model: str, request_id: str | None = None) -> list[VersionStatus]:
        """Every version the server knows for the model, with its state."""
        ...

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        """The signature of one version (a label resolves to its version number)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for calls that failed as UNAVAILABLE."""

    retries: int = 2
    backoff_seconds: float = 0.05
    backoff_max_seconds: float = 0.5

    def run(self, call: Callable[[], Result], deadline: float | None = None) -> Result:
        """Call, retrying only UNAVAILABLE failures, at most ``retries`` times, and none that
        would start less than :data:`MIN_ATTEMPT_SECONDS` before ``deadline`` (a
        ``time.monotonic()`` instant; the last failure is raised): a server that fails late
        or slowly (a connect timeout, a connection reset mid-call) would otherwise cost the
        client up to ``retries + 1`` deadlines."""
        delay = self.backoff_seconds
        for attempt in range(self.retries + 1):
            try:
                return call()
            except BackendError as error:
                late = deadline is not None and (
                    time.monotonic() + delay + MIN_ATTEMPT_SECONDS > deadline
                )
                if not error.retryable or attempt == self.retries or late:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, self.backoff_max_seconds)
        raise AssertionError("unreachable: the loop returns or raises")


def as_float_arrays(outputs: Mapping[str, Any]) -> Arrays:
    """Outputs as numpy arrays (JSON lists become float32 arrays)."""
    return {key: np.asarray(value, dtype=np.float32) for key, value in outputs.items()}
