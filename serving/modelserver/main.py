"""Command line with TF Serving's flag names: ``python -m serving.modelserver --port ...``.

Every flag of ``tensorflow_model_server`` is accepted, so TF Serving's own command lines
(its test harness, deploy files) start this server too. The ones listed in ``IGNORED`` are
logged as ignored at startup; the README says which flags are implemented.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from serving.log_levels import log_level
from serving.modelserver.config import (
    BatchingSettings,
    ModelSettings,
    MonitoringSettings,
    load_model_config,
    parse_batching_parameters,
    parse_monitoring_config,
)
from serving.modelserver.grpc_server import GrpcSettings, parse_channel_arguments
from serving.modelserver.server import ModelServer, ServerOptions, port_problems
from serving.modelserver.versions import RetryPolicy
from serving.numbers import parse_bool_flag, parse_int_flag

LOG = logging.getLogger(__name__)
VERSION = "modelserver (TF Serving stand-in)"
# tensorflow_model_server flags (main.cc) accepted for compatibility and ignored here.
IGNORED = (
    "rest_api_enable_cors_support",
    "num_load_threads",
    "num_unload_threads",
    "flush_filesystem_caches",
    "tensorflow_session_parallelism",
    "use_alts_credentials",
    "platform_config_file",
    "saved_model_tags",
    "enable_model_warmup",
    "num_request_iterations_for_warmup",
    "prefer_tflite_model",
    "enable_profiler",
    "thread_pool_factory_config_file",
    "mixed_precision",
    "skip_initialize_tpu",
    "enable_grpc_healthcheck_service",
    "enable_per_model_batching_parameters",
    "tensorflow_session_config_file",
    "ssl_config_file",
    "per_process_gpu_memory_fraction",
    "remove_unused_fields_from_bundle_metagraph",
    "num_tflite_pools",
    "num_tflite_interpreters_per_pool",
    "enable_signature_method_name_check",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
)


def _int(text: str) -> int:
    try:
        return parse_int_flag(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _int32(text: str) -> int:
    """An int32 flag value (TF Serving's ``tensorflow::int32`` flags)."""
    value = _int(text)
    if not -(2**31) <= value < 2**31:
        raise argparse.ArgumentTypeError(f"out of int32 range: {text!r}")
    return value


def _port(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def _path(text: str) -> Path | None:
    """A file or folder flag: empty is not given, as TF Serving reads its string flags
    (``model_config_file.empty()``); ``Path("")`` had been the working directory, served as
    ``--model_base_path`` or read as ``--model_config_file '.': Is a directory``."""
    return Path(text) if text else None


def _log_level(text: str) -> str:
    # An unknown name was a traceback from logging.basicConfig (serving.log_levels).
    try:
        return log_level(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _count(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text!r}")
    return value


def _bool(text: str) -> bool:
    try:
        return parse_bool_flag(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def build_parser() -> argparse.ArgumentParser:
    """Flags named and defaulted as tensorflow_model_server's."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.modelserver",
        description="TF Serving-compatible model server (gRPC + REST) for machines without Docker.",
    )
    add = parser.add_argument

    def flag(name: str) -> None:  # --x, --x=true, --x=false
        add(name, nargs="?", const=True, type=_bool, default=False)

    add("--port", type=_port, default=8500, help="gRPC port (0 = any free port)")
    add("--grpc_socket_path", default="", help="also serve gRPC on this UNIX socket")
    add("--grpc_channel_arguments", default="", help="key=value,... for the gRPC server")
    add("--grpc_max_threads", type=_count, default=64)
    add("--rest_api_port", type=_port, default=8501, help="REST port (0 = any free port)")
    add("--rest_api_num_threads", type=_count, default=0, help="REST worker threads (0: 32)")
    add(
        "--rest_api_timeout_in_ms",
        type=_int32,
        default=30_000,
        help="REST predict deadline, as a gRPC call's (<= 0: none); TF Serving's default",
    )
    add("--host", default="127.0.0.1", help="bind address of gRPC and REST (not in TF Serving)")
    add("--model_config_file", type=_path, help="text model_config_list file")
    add("--model_config_file_poll_wait_seconds", type=_count, default=0)
    add("--model_name", default="default", help="name of the single model (no config file)")
    add("--model_base_path", type=_path, help="folder of the single model's versions")
    flag("--enable_batching")
    add("--batching_parameters_file", type=_path, help="text BatchingParameters file")
    add(
        "--batching_split_by_length",
        nargs="?",
        const=True,
        type=_bool,
        default=True,
        help="run a padded batch as calls of rows of similar length (not in TF Serving)",
    )
    add("--monitoring_config_file", type=_path, help="text MonitoringConfig file")
    add("--file_system_poll_wait_seconds", type=_count, default=1)
    add("--max_num_load_retries", type=_count, default=5)
    add("--load_retry_interval_micros", type=_count, default=60_000_000)
    flag("--enable_serialization_as_tensor_content")
    flag("--allow_version_labels_for_unavailable_models")
    add("--tensorflow_intra_op_parallelism", type=_count, default=0, help="0: one per core")
    add("--tensorflow_inter_op_parallelism", type=_count, default=0, help="0: one per core")
    flag("--version")
    add("--log_level", type=_log_level, default="INFO")
    for name in IGNORED:
        add(f"--{name}", nargs="?", const="true", default=None, help="accepted, ignored")
    return parser


@contextlib.contextmanager
def _naming(flag: str, path: Path) -> Iterator[None]:
    """Turn a file the flag names that cannot be read, or that does not parse, into a
    ValueError naming the flag: ``main`` prints it and exits 2, where a missing
    ``--model_config_file`` had ended in a FileNotFoundError traceback (exit 1)."""
    try:
        yield
    except OSError as error:
        raise ValueError(f"--{flag} {str(path)!r}: {error.strerror or error}") from error
    except ValueError as error:
        raise ValueError(f"--{flag} {str(path)!r}: {error}") from error


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    """Turn parsed flags into ServerOptions, reading the config files they name."""
    if args.model_config_file is not None:
        with _naming("model_config_file", args.model_config_file):
            models = load_model_config(args.model_config_file)
    elif args.model_base_path is not None:
        if not args.model_name:  # a config entry without a name is refused alike
            raise ValueError("--model_name is empty: give the name requests ask for")
        models = [ModelSettings(args.model_name, args.model_base_path.resolve())]
    else:
        # A ValueError: main prints it as "modelserver: ..." with exit 2, as other flag errors.
        raise ValueError("give --model_config_file, or --model_base_path (and --model_name)")
    batching = None
    if args.enable_batching:
        batching = BatchingSettings()
        if args.batching_parameters_file is not None:
            with _naming("batching_parameters_file", args.batching_parameters_file):
                batching = parse_batching_parameters(args.batching_parameters_file.read_text())
        batching = replace(batching, split_by_length=args.batching_split_by_length)
    monitoring = MonitoringSettings()
    if args.monitoring_config_file is not None:
        with _naming("monitoring_config_file", args.monitoring_config_file):
            monitoring = parse_monitoring_config(args.monitoring_config_file.read_text())
    return ServerOptions(
        models=models,
        rest_api_port=args.rest_api_port,
        host=args.host,
        grpc=GrpcSettings(
            host=args.host,
            port=args.port,
            socket_path=args.grpc_socket_path,
            max_threads=args.grpc_max_threads,
            channel_arguments=parse_channel_arguments(args.grpc_channel_arguments),
            tensor_content=args.enable_serialization_as_tensor_content,
        ),
        batching=batching,
        monitoring=monitoring,
        poll_seconds=args.file_system_poll_wait_seconds,
        retry=RetryPolicy(args.max_num_load_retries, args.load_retry_interval_micros / 1e6),
        model_config_file=args.model_config_file,
        config_poll_seconds=args.model_config_file_poll_wait_seconds,
        rest_api_num_threads=args.rest_api_num_threads or 32,
        rest_api_timeout_in_ms=args.rest_api_timeout_in_ms,
        allow_unavailable_labels=args.allow_version_labels_for_unavailable_models,
    )


def set_thread_pools(intra_op: int, inter_op: int) -> None:
    """Size TensorFlow's process-wide thread pools, as TF Serving's flags of the same names.

    TF Serving puts them in every session's ConfigProto; here every session uses the
    process's pools, which TensorFlow sizes from ``TF_NUM_INTRAOP_THREADS`` and
    ``TF_NUM_INTEROP_THREADS`` when the first session starts (``process_util.cc``,
    ``local_device.cc``), so they are set before any model loads. 0 keeps TensorFlow's
    default (one thread per core) or a value already in the environment.
    """
    for name, value in (("TF_NUM_INTRAOP_THREADS", intra_op), ("TF_NUM_INTEROP_THREADS", inter_op)):
        if value > 0:
            os.environ[name] = str(value)


def configure_logging(level: str) -> None:
    """Log at ``level`` (``info``, ``WARNING``...) in this server's format, each line once.

    ``python -m serving.modelserver`` imports TensorFlow before this runs (``serving.gpu_logs``
    drops its no-GPU lines), and TensorFlow gives its ``tensorflow`` logger a handler of its
    own when the root logger has none yet (``tf_logging.get_logger``): each of its lines
    (a version's ``Restoring parameters``) then printed twice, once in each format.
    """
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("tensorflow").handlers.clear()  # its lines reach the root handler


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM or SIGINT, then shut down gracefully and return 0."""
    args = build_parser().parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    configure_logging(args.log_level)
    for name in IGNORED:
        if (value := getattr(args, name)) is not None:
            LOG.warning("--%s=%s is accepted for compatibility and ignored", name, value)
    set_thread_pools(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    try:
        options = options_from_args(args)
    except ValueError as error:
        print(f"modelserver: {error}", file=sys.stderr)
        return 2
    if problems := port_problems(options):
        print("\n".join(f"modelserver: {problem}" for problem in problems), file=sys.stderr)
        return 2
    server = ModelServer(options)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    # The helper in tests/support reads this line to learn the bound ports.
    print(
        f"modelserver ready grpc_port={server.grpc_port} rest_port={server.rest_port}", flush=True
    )
    stop_requested.wait()
    server.stop()
    return 0
