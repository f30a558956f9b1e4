"""Backends: TF Serving over gRPC or REST, or an in-process SavedModel (development)."""

from __future__ import annotations

from serving.gateway.backends.base import (
    Backend,
    ModelMetadata,
    RetryPolicy,
    TensorSpec,
    VersionSelector,
    VersionStatus,
)
from serving.gateway.settings import GatewaySettings

__all__ = [
    "Backend",
    "ModelMetadata",
    "RetryPolicy",
    "TensorSpec",
    "VersionSelector",
    "VersionStatus",
    "make_backend",
]


def retry_policy(settings: GatewaySettings) -> RetryPolicy:
    """The retry policy the settings describe."""
    return RetryPolicy(
        retries=settings.retries,
        backoff_seconds=settings.retry_backoff_seconds,
        backoff_max_seconds=settings.retry_backoff_max_seconds,
    )


def make_backend(settings: GatewaySettings) -> Backend:
    """The backend the settings choose (imports only that backend's dependencies)."""
    if settings.backend == "grpc":
        from serving.gateway.backends.grpc_backend import GrpcBackend

        return GrpcBackend(
            settings.grpc_target,
            timeout_seconds=settings.request_timeout_seconds,
            retry=retry_policy(settings),
            max_message_bytes=settings.max_message_bytes,
        )
    if settings.backend == "rest":
        from serving.gateway.backends.rest_backend import RestBackend

        return RestBackend(
            settings.rest_url,
            timeout_seconds=settings.request_timeout_seconds,
            connect_timeout_seconds=settings.connect_timeout_seconds,
            retry=retry_policy(settings),
            max_answer_bytes=settings.max_message_bytes,
            max_connections=settings.rest_max_connections,
        )
    from serving.gateway.backends.local_backend import LocalBackend

    return LocalBackend(settings.model_repo)
