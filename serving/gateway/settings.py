"""All gateway settings, read from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BackendKind = Literal["grpc", "rest", "local"]


class GatewaySettings(BaseSettings):
    """Gateway configuration; every field can be set as ``GATEWAY_<FIELD NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    backend: BackendKind = "grpc"
    """How to reach the models: TF Serving over ``grpc`` or ``rest``, or ``local`` (in-process
    TensorFlow, for development only: it makes the gateway process load TensorFlow)."""

    grpc_target: str = "127.0.0.1:8500"
    """TF Serving's gRPC address (``host:port``)."""

    rest_url: str = "http://127.0.0.1:8501"
    """TF Serving's REST base URL."""

    model_repo: Path = Path("model_repo")
    """The model repository TF Serving serves (mounted read-only beside it); the gateway reads
    ``models.config`` and each version's ``assets.extra/`` (serving_spec.json, tokenizers;
    legacy preprocessing.json + labels.json) from here."""

    models: Annotated[tuple[str, ...], NoDecode] = ()
    """Optional filter: route only these of the models named in ``models.config`` (empty:
    every configured model). ``qa,profile`` or a JSON list ``["qa", "profile"]``."""

    request_timeout_seconds: float = Field(default=5.0, gt=0)
    """Deadline of every backend call (gRPC deadline, HTTP read timeout)."""

    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    """HTTP connect timeout of the REST backend."""

    retries: int = Field(default=2, ge=0, le=10)
    """Retries of a backend call that failed as UNAVAILABLE (nothing else is retried)."""

    retry_backoff_seconds: float = Field(default=0.05, ge=0)
    """First retry delay; it doubles per retry, capped by ``retry_backoff_max_seconds``."""

    retry_backoff_max_seconds: float = Field(default=0.5, ge=0)
    """Longest delay between two retries."""

    retry_after_seconds: int = Field(default=1, ge=0)
    """``Retry-After`` header value sent with 503 answers."""

    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Largest gRPC message sent or received."""

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest request body accepted (413 above it)."""

    max_chars_per_text: int = Field(default=20_000, gt=0)
    """Longest text (or list item) accepted, for every model; a spec's smaller ``max_chars``
    wins (422 above it)."""

    max_posts_per_profile: int = Field(default=200, gt=0)
    """Most items of a list input (profile posts) accepted; a spec's smaller ``max_items``
    wins (422 above it)."""

    max_pairs_per_request: int = Field(default=64, gt=0)
    """Most sentence pairs accepted in one similarity request (422 above it)."""

    max_instances_per_batch: int = Field(default=32, gt=0)
    """Most instances accepted in one batch request (422 above it)."""

    max_top_k: int = Field(default=10, gt=0)
    """Largest ``top_k`` a request may ask for (422 above it)."""

    version_poll_seconds: float = Field(default=2.0, gt=0)
    """How often the gateway asks the backend for new model versions."""

    log_level: str = "INFO"
    """Level of the gateway's JSON logs."""

    @field_validator("models", mode="before")
    @classmethod
    def _model_names(cls, value: Any) -> Any:
        """Accept ``"a,b,c"`` as well as a JSON list (the environment gives a string)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return tuple(json.loads(text))
        return tuple(name.strip() for name in text.split(",") if name.strip())
