"""Parse the files the official TF Serving reads: models.config, batching and monitoring.

``model_config_list`` comes from the ``tensorflow-serving-api`` package. The batching and
monitoring messages are not shipped in that package, so their text formats are read with
small message types built here with the same field names the official server uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from serving.models_config import EmptyConfigError, check_model_list
from serving.proto_schema import FIELD, add_message_field, message_class

LOG = logging.getLogger("serving.modelserver.config")
WRAPPERS_FILE = "google/protobuf/wrappers.proto"
PACKAGE = "modelserver.config"


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions to serve: ``latest`` N, ``all``, or ``specific`` ones."""

    kind: str = "latest"  # "latest" | "all" | "specific"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> set[int]:
        """The versions among ``available`` this policy wants served."""
        if self.kind == "all":
            return set(available)
        if self.kind == "specific":
            return set(available) & set(self.versions)
        return set(sorted(available)[-self.num_versions :]) if self.num_versions > 0 else set()


@dataclass(frozen=True)
class ModelSettings:
    """One entry of ``model_config_list`` with its base path made absolute."""

    name: str
    base_path: Path
    policy: VersionPolicy = VersionPolicy()
    labels: tuple[tuple[str, int], ...] = ()

    def label_map(self) -> dict[str, int]:
        """Version labels as a dict."""
        return dict(self.labels)


@dataclass(frozen=True)
class BatchingSettings:
    """The parts of TF Serving's ``BatchingParameters`` this server implements."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 64
    num_batch_threads: int = 2
    pad_variable_length_inputs: bool = False
    # This server's extension, from --batching_split_by_length (not a BatchingParameters
    # field, so the file stays valid for TF Serving): see serving/modelserver/packing.py.
    split_by_length: bool = False


@dataclass(frozen=True)
class MonitoringSettings:
    """TF Serving's ``prometheus_config``."""

    enable: bool = False
    path: str = "/monitoring/prometheus/metrics"


def parse_model_config(text: str, config_dir: Path) -> list[ModelSettings]:
    """Parse a text ``ModelServerConfig`` (``model_config_list { config { ... } }``).

    Raises ValueError for a text that is not one or a list refused (a name twice), and
    :class:`EmptyConfigError` (a ValueError) for one that sets no ``model_config_list``.
    """
    try:
        server_config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as error:
        raise ValueError(f"model config is not a valid text ModelServerConfig: {error}") from error
    if server_config.WhichOneof("config") == "custom_model_config":
        raise ValueError("custom_model_config is not supported; use model_config_list")
    if server_config.WhichOneof("config") is None:
        raise EmptyConfigError("model config sets no model_config_list (empty)")
    entries = server_config.model_config_list.config
    check_model_list([(entry.name, entry.base_path, entry.model_platform) for entry in entries])
    models = []
    for entry in entries:
        base_path = Path(entry.base_path)
        # The official server resolves relative paths against its working directory; this
        # server uses the config file's folder so the repo works from anywhere.
        models.append(
            ModelSettings(
                name=entry.name,
                base_path=base_path if base_path.is_absolute() else config_dir / base_path,
                policy=_policy(entry.model_version_policy),
                labels=tuple(
                    sorted((key, int(value)) for key, value in entry.version_labels.items())
                ),
            )
        )
    return models


def load_model_config(path: Path, *, empty_ok: bool = True) -> list[ModelSettings]:
    """Read and parse a models.config file; an empty one has no models when ``empty_ok``
    (a start), else raises :class:`EmptyConfigError` (a re-read, which keeps its models)."""
    try:
        return parse_model_config(path.read_text(), path.resolve().parent)
    except EmptyConfigError:
        if empty_ok:
            return []
        raise


def _policy(message: Any) -> VersionPolicy:
    kind = message.WhichOneof("policy_choice")
    if kind == "all":
        return VersionPolicy(kind="all")
    if kind == "specific":
        return VersionPolicy(kind="specific", versions=tuple(message.specific.versions))
    if kind == "latest" and message.latest.num_versions > 0:
        return VersionPolicy(num_versions=message.latest.num_versions)
    return VersionPolicy()


def parse_batching_parameters(text: str) -> BatchingSettings:
    """Parse TF Serving's text ``BatchingParameters``; fields this server ignores are allowed."""
    message = _parse_declared(text, "BatchingParameters")
    defaults = BatchingSettings()

    def wrapped(field: str, default: int) -> int:
        return int(getattr(message, field).value) if message.HasField(field) else default

    return BatchingSettings(
        max_batch_size=wrapped("max_batch_size", defaults.max_batch_size),
        batch_timeout_micros=wrapped("batch_timeout_micros", defaults.batch_timeout_micros),
        max_enqueued_batches=wrapped("max_enqueued_batches", defaults.max_enqueued_batches),
        num_batch_threads=wrapped("num_batch_threads", defaults.num_batch_threads),
        pad_variable_length_inputs=bool(message.pad_variable_length_inputs),
    )


def parse_monitoring_config(text: str) -> MonitoringSettings:
    """Parse TF Serving's text ``MonitoringConfig``."""
    message = _parse_declared(text, "MonitoringConfig")
    prometheus = message.prometheus_config
    return MonitoringSettings(
        enable=bool(prometheus.enable), path=prometheus.path or MonitoringSettings.path
    )


def _parse_declared(text: str, kind: str) -> Any:
    """Parse a text ``kind`` message with the fields this server declares.

    Fields it does not declare are skipped (TF Serving's newer options, which it ignores), but
    logged as a warning, since one is as likely a misspelling (``max_batch_sise``) that left
    its default in force without a word. A text that does not parse raises ValueError, like
    the model config's.
    """
    try:
        return text_format.Parse(text, _message_class(kind)())
    except text_format.ParseError as strict_error:
        try:
            message = text_format.Parse(text, _message_class(kind)(), allow_unknown_field=True)
        except text_format.ParseError as error:
            raise ValueError(f"not a valid text {kind}: {error}") from error
        LOG.warning(
            "%s: %s; this server ignores it (misspelt? the fields it knows: %s)",
            kind,
            strict_error,
            ", ".join(sorted(message.DESCRIPTOR.fields_by_name)),
        )
        return message


def _message_class(name: str) -> Any:
    """A message class from a fresh descriptor pool (built on demand, never at import)."""
    return message_class(
        _config_file_descriptor(), f"{PACKAGE}.{name}", [wrappers_pb2.DESCRIPTOR.serialized_pb]
    )


def _config_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="modelserver_config.proto", package=PACKAGE, syntax="proto3"
    )
    file_proto.dependency.append(WRAPPERS_FILE)
    batching = file_proto.message_type.add(name="BatchingParameters")
    int64_fields = ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches"]
    for number, key in enumerate([*int64_fields, "num_batch_threads"], start=1):
        add_message_field(batching, key, number, ".google.protobuf.Int64Value")
    batching.field.add(
        name="allowed_batch_sizes", number=6, type=FIELD.TYPE_INT64, label=FIELD.LABEL_REPEATED
    )
    batching.field.add(name="pad_variable_length_inputs", number=7, type=FIELD.TYPE_BOOL)
    prometheus = file_proto.message_type.add(name="PrometheusConfig")
    prometheus.field.add(name="enable", number=1, type=FIELD.TYPE_BOOL)
    prometheus.field.add(name="path", number=2, type=FIELD.TYPE_STRING)
    monitoring = file_proto.message_type.add(name="MonitoringConfig")
    add_message_field(monitoring, "prometheus_config", 1, f".{PACKAGE}.PrometheusConfig")
    return file_proto
