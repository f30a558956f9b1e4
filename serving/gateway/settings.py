"""All gateway settings, read from ``GATEWAY_*`` environment variables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from limits.errors import ConfigurationError
from limits.storage import MemoryStorage, storage_from_string
from pydantic import BeforeValidator, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from serving.log_levels import log_level as known_log_level
from serving.redaction import redact_in, redact_url

BackendKind = Literal["grpc", "rest", "local"]
# The longest wait any time setting may give (an hour): a gRPC deadline past ~7e9 s (int64
# nanoseconds from now) is already over, and socket and thread timeouts past ~1e9 s raise
# OverflowError; GATEWAY_REQUEST_TIMEOUT_SECONDS=1e10 made every call a 503 at once.
MAX_WAIT_SECONDS = 3600.0
# gRPC's channel options are C ints: a message limit past this was an OverflowError in each
# call, every request a 500 (GATEWAY_MAX_MESSAGE_BYTES=3000000000).
MAX_GRPC_INT = 2**31 - 1


def _names(value: Any) -> Any:
    """``a,b,c`` (the documented form) or a JSON list ``["a", "b"]`` -> a list of strings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


# NoDecode: pydantic-settings would otherwise insist on JSON for a tuple-typed variable.
NameList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]


class GatewaySettings(BaseSettings):
    """Gateway configuration; every field can be set as ``GATEWAY_<FIELD NAME>``."""

    # hide_input_in_errors: pydantic's text of an error (a worker's traceback, an app built
    # outside gunicorn) showed each bad value, a URL's password too; settings_errors shows
    # them masked.
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,
        hide_input_in_errors=True,
        # No setting means anything as inf or nan: GATEWAY_REQUEST_TIMEOUT_SECONDS=inf was
        # taken, and every backend call then failed at once as DEADLINE_EXCEEDED (a 503).
        allow_inf_nan=False,
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

    models: NameList = ()
    """Optional filter: route only these of the models named in ``models.config`` (empty:
    every configured model). ``qa,profile`` or a JSON list ``["qa", "profile"]``."""

    ready_models: NameList = ()
    """Models ``/readyz`` waits for: it answers 503 only while one of these has no version that
    fits its spec (or one is not configured). Empty (default): every routed model. Set it when
    one pod serves several teams' models, so one broken model repo does not take every pod out
    of its Service; the others' problems are still listed in ``/readyz``'s 200 body."""

    request_timeout_seconds: float = Field(default=5.0, gt=0, le=MAX_WAIT_SECONDS)
    """Deadline of every backend call (gRPC deadline, HTTP read timeout)."""

    check_timeout_seconds: float = Field(default=60.0, gt=0, le=MAX_WAIT_SECONDS)
    """Deadline of each call of a version's fit check at its load (``serving.gateway.checks``:
    the spec's example, a row of ``max_tokens`` ids, the padding probes). A load is not a
    client's request (TF Serving's warmup has no deadline): a model that needs longer than
    ``request_timeout_seconds`` on a full row is still checked, and routed with a warning.
    Never shorter than ``request_timeout_seconds`` (the longer of the two is used)."""

    connect_timeout_seconds: float = Field(default=1.0, gt=0, le=MAX_WAIT_SECONDS)
    """HTTP connect timeout of the REST backend."""

    rest_max_connections: int = Field(default=64, ge=1, le=65536)
    """Most REST backend calls (so connections) a worker has open at once; a call beyond it
    waits for a free one until its deadline, then answers 503 (a burst had opened one
    socket per request, up to ``worker_connections``)."""

    retries: int = Field(default=2, ge=0, le=10)
    """Retries of a backend call that failed as UNAVAILABLE (nothing else is retried)."""

    retry_backoff_seconds: float = Field(default=0.05, ge=0, le=MAX_WAIT_SECONDS)
    """First retry delay; it doubles per retry, capped by ``retry_backoff_max_seconds``."""

    retry_backoff_max_seconds: float = Field(default=0.5, ge=0, le=MAX_WAIT_SECONDS)
    """Longest delay between two retries."""

    retry_after_seconds: int = Field(default=1, ge=0)
    """``Retry-After`` header value sent with 503 answers."""

    coalesce_max_rows: int = Field(default=32, ge=0)
    """Most examples (rows) one backend call may carry when a worker merges concurrent
    requests to one model version (request coalescing: ``serving/gateway/coalescing.py``);
    0 or 1: every request has a call of its own. Keep it at or under the model server's
    ``max_batch_size`` (``batching_parameters.txt``: 32), which TF Serving's batching enforces
    on each call. A request with this many rows or more always calls alone."""

    coalesce_in_flight: int = Field(default=1, ge=1, le=1024)
    """Backend calls a worker keeps in flight per model version; a request arriving while
    they are waits and goes out merged with the others in the next call. 1 merged the most
    and answered fastest under load on the 2-core benchmark machine (``loadtests/README.md``,
    round 8); raise it when one model server call is slow compared to the gateway's work."""

    coalesce_max_hold_ms: float = Field(default=5.0, ge=0, le=MAX_WAIT_SECONDS * 1000)
    """How long after it started a backend call holds the requests queued behind it; then
    they go out together without waiting for it (TF Serving's ``batch_timeout_micros``, on
    the gateway's side). Bounds the wait a request adds for a batch, and keeps a model
    server fed whose calls are long."""

    max_message_bytes: int = Field(default=64 * 1024 * 1024, gt=0, le=MAX_GRPC_INT)
    """Largest gRPC message sent or received; with the REST backend, the largest answer body
    read (a larger one is the model server's fault: 502)."""

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    """Largest request body accepted (413 above it)."""

    client_read_timeout_seconds: float = Field(default=30.0, gt=0, le=MAX_WAIT_SECONDS)
    """Longest wait for a client's next bytes while its request is read (seconds; each wait,
    not the whole upload, as nginx's ``client_body_timeout``): a body that stalls past it is
    answered 408 and its connection closed; stalled headers close the connection, and so do
    headers not whole within it from their second read (under gevent gunicorn's keepalive,
    5 s, bounds the whole header block too). A stalled client
    held its connection, and under gthread one of the worker's few threads, for good
    (``serving/gateway/read_timeout.py``)."""

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

    grpc_call_pool: bool = True
    """gevent worker: wait for each gRPC call in the gateway's own native-thread pool
    (``serving.gateway.grpc_gevent.CallPool``: cheaper per call, no cap of 9 calls waiting at
    once); ``false`` keeps grpcio's default, gevent's hub thread pool. Either way grpcio's
    gevent mode is on, so a call never blocks the worker."""

    fast_path: bool = True
    """Answer the prediction routes (``/v1/qa``-style aliases and ``:predict`` without a query
    string) in a WSGI path in front of Flask (``serving/gateway/fastpath.py``: same answers,
    headers, logs and metrics, less CPU per request); ``false`` sends every request through
    Flask. Off by itself when API keys or rate limits are set (their hooks run in Flask)."""

    version_poll_seconds: float = Field(default=2.0, gt=0, le=MAX_WAIT_SECONDS)
    """How often the gateway asks the backend for new model versions."""

    access_log_flush_seconds: float = Field(default=0.1, ge=0, le=60)
    """How long a worker may hold its access lines before it writes them, together in one
    ``write`` (seconds; ``0`` = each at once; nginx's ``access_log ... flush=``): less CPU
    per request (issue 9). Any other gateway line writes the held ones first; a worker killed
    with ``SIGKILL`` loses at most this long's lines."""

    metrics_flush_seconds: float = Field(default=0.1, ge=0, le=60)
    """How long a worker may hold its requests' metric values before it writes them (seconds;
    ``0`` = each at once). Written together they cost less CPU per request (issue 9);
    ``/metrics`` shows another worker's latest requests at most this much later, and a worker
    killed with ``SIGKILL`` loses at most this long's values."""

    log_level: Annotated[str, BeforeValidator(known_log_level)] = "INFO"
    """Level of the gateway's JSON logs (and gunicorn's): DEBUG, INFO, WARNING, ERROR or
    CRITICAL, any case."""

    api_keys: NameList = ()
    """API keys clients must send (``Authorization: Bearer <key>`` or ``X-API-Key``),
    comma-separated or a JSON list; empty (default) = no authentication. ``/healthz``,
    ``/readyz``, ``/openapi.json`` and ``/docs`` stay open."""

    api_keys_file: Path | None = None
    """A file with one API key per line (e.g. a mounted Kubernetes Secret); added to
    ``api_keys``. Blank lines and lines starting with ``#`` are skipped."""

    metrics_require_key: bool = True
    """With API keys set, ``/metrics`` needs a key too; ``false`` leaves it open for a scraper
    that cannot send one."""

    rate_limit: str = ""
    """Per-client rate limits in the ``limits`` syntax (``100/minute;2000/hour``), counted per
    API key (per client address without keys); empty (default) = none. Over it: 429 with
    ``Retry-After``."""

    rate_limit_storage_uri: str = "memory://"
    """Where rate-limit counters live: ``memory://`` counts per worker process; use a shared
    store (``redis://host:6379``) to count across workers and replicas."""

    @field_validator("rest_url")
    @classmethod
    def _valid_rest_url(cls, value: str) -> str:
        # Checked at start: a URL the REST backend cannot call stopped every worker's boot.
        from serving.gateway.backends.rest_transport import base_url_parts

        base_url_parts(value)
        return value

    @field_validator("grpc_target")
    @classmethod
    def _valid_grpc_target(cls, value: str) -> str:
        # gRPC takes no credentials in its target: a user:password@ was never sent, only
        # repeated by every failed call's message ("errors resolving user:secret@host").
        if not value.strip():
            # An unset variable in a deploy file (GATEWAY_GRPC_TARGET=${TARGET}) started a
            # gateway whose every call failed, /readyz saying only "backend internal".
            raise ValueError("empty: the model server's gRPC address, host:port")
        if "@" in value and not value.startswith(("unix:", "unix-abstract:", "vsock:")):
            raise ValueError(
                f"a gRPC target has no user or password: {redact_url(value)!r} "
                "(host:port, dns:///host:port, ipv4:address:port)"
            )
        return value

    @field_validator("model_repo", mode="before")
    @classmethod
    def _named_repo(cls, value: object) -> object:
        # "" is Path("."): an unset variable in a deploy file served the working directory,
        # with a warning that it routes no model.
        if isinstance(value, str) and not value.strip():
            raise ValueError("empty: the model repository's folder (it holds models.config)")
        return value

    @field_validator("rate_limit_storage_uri")
    @classmethod
    def _valid_storage_uri(cls, value: str) -> str:
        # A scheme the limits library does not know, or one whose client package is not
        # installed (redis://), failed each worker's boot with a traceback. Building the
        # storage checks both and connects to nothing (the clients connect on first use).
        # Not the in-process storage (memory://, the default): it needs no client package,
        # and building one starts a threading.Timer thread. Each settings object started one,
        # and one started in a gevent worker just before gevent patched threading wrote
        # "Exception ignored in thread started by ... KeyError" on stderr as it ended: a line
        # that is no JSON in the gateway's log (found as an intermittent CI failure).
        if value.partition(":")[0].lower() in MemoryStorage.STORAGE_SCHEME:
            return value
        try:
            storage_from_string(value)
        except ConfigurationError as error:
            # limits repeats the URI: its password masked, the original not chained.
            raise ValueError(redact_in(str(error), value)) from None
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _readable_keys_file(cls, value: Path | None) -> Path | None:
        # Read by each worker as it builds the app: a missing file was a traceback per worker.
        if value is not None:
            try:
                value.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
                raise ValueError(f"cannot be read ({reason or error})") from error
        return value

    @field_validator("rate_limit")
    @classmethod
    def _valid_rate_limit(cls, value: str) -> str:
        if value:
            parse_many(value)  # raises ValueError with the limits library's message
        return value

    def api_key_values(self) -> list[str]:
        """Every configured API key (settings, then the keys file); OSError if unreadable."""
        keys = [key for key in self.api_keys if key]
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text(encoding="utf-8").splitlines()
            keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return keys
