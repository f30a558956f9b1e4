"""TF Serving over its REST API, on keep-alive connections (``rest_transport``)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import numpy.typing as npt

from serving.gateway.backends.base import (
    Arrays,
    ModelMetadata,
    RetryPolicy,
    TensorSpec,
    VersionSelector,
    VersionStatus,
    as_float_arrays,
)
from serving.gateway.backends.rest_transport import Transport
from serving.gateway.errors import BackendError, BackendFailure
from serving.url_paths import model_url_path, path_segment

# The local model server's 413: "The request body is larger than N bytes".
BODY_LIMIT = re.compile(r"larger than (\d{1,19}) bytes")
FAILURES: dict[int, BackendFailure] = {
    400: BackendFailure.INVALID_ARGUMENT,
    404: BackendFailure.NOT_FOUND,
    408: BackendFailure.DEADLINE_EXCEEDED,
    # The body past the server's limit: the client's request too large, as the gRPC
    # backend's message size limits (the local model server's words name the bytes).
    413: BackendFailure.TOO_LARGE,
    429: BackendFailure.UNAVAILABLE,
    503: BackendFailure.UNAVAILABLE,
    504: BackendFailure.DEADLINE_EXCEEDED,
}


def model_path(model: str, selector: VersionSelector) -> str:
    """``/v1/models/<name>[/versions/N|/labels/L]``, the name and label one encoded segment
    each (:mod:`serving.url_paths`)."""
    path = model_url_path(model)
    if selector.version is not None:
        return f"{path}/versions/{selector.version}"
    return f"{path}/labels/{path_segment(selector.label)}" if selector.label else path


class RestBackend:
    """Columnar ``inputs`` predict calls; status and metadata GETs."""

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float = 5.0,
        connect_timeout_seconds: float = 1.0,
        retry: RetryPolicy | None = None,
        pool_size: int = 16,
        max_answer_bytes: int = 64 * 1024 * 1024,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.retry = retry or RetryPolicy()
        self._transport = Transport(
            self.base_url, connect_timeout_seconds, pool_size, max_answer_bytes, max_connections
        )
        self._outputs: dict[tuple[str, int | None], tuple[str, ...]] = {}

    def predict(
        self,
        model: str,
        selector: VersionSelector,
        inputs: Mapping[str, npt.NDArray[Any]],
        request_id: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Arrays:
        """POST ``...:predict`` with columnar inputs; a single output may come back bare
        (``timeout_seconds``: :meth:`serving.gateway.backends.base.Backend.predict`)."""
        body = {
            "signature_name": selector.signature_name,
            "inputs": {key: value.tolist() for key, value in inputs.items()},
        }
        answer = self._request(
            "POST", f"{model_path(model, selector)}:predict", request_id, body, timeout_seconds
        )
        outputs = answer.get("outputs")
        if not isinstance(outputs, dict):
            # TF Serving drops the output name when the signature has exactly one output.
            names = self._output_names(model, selector, request_id)
            if len(names) != 1:
                raise BackendError(BackendFailure.INTERNAL, "unnamed outputs in the answer")
            outputs = {names[0]: outputs}
        try:
            return as_float_arrays(outputs)
        except (ValueError, TypeError) as error:  # ragged rows, strings: as gRPC's decoding
            raise BackendError(BackendFailure.INTERNAL, f"unreadable outputs: {error}") from error

    def _output_names(
        self, model: str, selector: VersionSelector, request_id: str | None
    ) -> tuple[str, ...]:
        """The signature's output names (from metadata, cached per pinned version)."""
        key = (model, selector.version)
        names = self._outputs.get(key) if selector.version is not None else None
        if names is None:
            names = tuple(self.model_metadata(model, selector, request_id).outputs)
            if selector.version is not None:
                self._outputs[key] = names
        return names

    def model_status(self, model: str, request_id: str | None = None) -> list[VersionStatus]:
        """GET ``/v1/models/<name>``."""
        answer = self._request("GET", model_path(model, VersionSelector()), request_id)
        try:
            return [
                VersionStatus(
                    version=int(item["version"]),
                    state=str(item["state"]),
                    error=str(item.get("status", {}).get("error_message", "")),
                )
                for item in answer.get("model_version_status", [])
            ]
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # A server that answers something else than TF Serving's status JSON.
            raise BackendError(BackendFailure.INTERNAL, f"bad status: {error!r}") from error

    def model_metadata(
        self, model: str, selector: VersionSelector, request_id: str | None = None
    ) -> ModelMetadata:
        """GET ``.../metadata`` and read the selector's signature (empty inputs and outputs
        if the version has none of that name)."""
        answer = self._request("GET", f"{model_path(model, selector)}/metadata", request_id)
        try:
            found = answer["metadata"]["signature_def"]["signature_def"]
            version = int(answer["model_spec"]["version"])
            names = tuple(sorted(found))
            if selector.signature_name not in found:
                return ModelMetadata(name=model, version=version, signatures=names)
            signature = found[selector.signature_name]
            return ModelMetadata(
                name=model,
                version=version,
                inputs={key: _spec(info) for key, info in signature["inputs"].items()},
                outputs={key: _spec(info) for key, info in signature["outputs"].items()},
                signatures=names,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BackendError(BackendFailure.INTERNAL, f"bad metadata: {error!r}") from error

    def close(self) -> None:
        """Close the idle connections."""
        self._transport.close()

    def _request(
        self,
        method: str,
        path: str,
        request_id: str | None,
        body: Any = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        headers = {"X-Request-ID": request_id} if request_id else {}
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        # One deadline for the call and its retries: each attempt gets the time left.
        deadline = time.monotonic() + (timeout_seconds or self.timeout_seconds)

        def attempt() -> dict[str, Any]:
            answer = self._transport.call(method, path, payload, headers, deadline)
            return decode_answer(answer.status, answer.body)

        return self.retry.run(attempt, deadline)


def decode_answer(status: int, content: bytes) -> dict[str, Any]:
    """The JSON object a REST answer holds; BackendError for a status other than 200
    (:data:`FAILURES`; a 413 names the server's body limit when its words give it), and
    INTERNAL for a 200 that is no JSON object."""
    try:
        answer = json.loads(content)
    except ValueError as error:  # UnicodeDecodeError is one
        answer = {"error": content[:500].decode(errors="replace")}
        if status == 200:  # it was read as {"error": ...}: a status with no versions
            message = f"a 200 that is no JSON: {answer['error']}"
            raise BackendError(BackendFailure.INTERNAL, message) from error
    if not isinstance(answer, dict):
        answer = {"error": f"unexpected answer {str(answer)[:200]}"}
        if status == 200:
            raise BackendError(BackendFailure.INTERNAL, answer["error"])
    if status != 200:
        failure = FAILURES.get(status, BackendFailure.INTERNAL)
        message = f"HTTP {status}: {answer.get('error', '')}"
        found = BODY_LIMIT.search(message) if status == 413 else None
        limit = ("model_server_max_body_bytes", int(found[1])) if found else None
        raise BackendError(failure, message, retryable=status == 503, limit=limit)
    return answer


def _spec(info: Mapping[str, Any]) -> TensorSpec:
    dims = info.get("tensor_shape", {}).get("dim", [])
    return TensorSpec(
        dtype=str(info.get("dtype", "")), shape=tuple(int(dim["size"]) for dim in dims)
    )
