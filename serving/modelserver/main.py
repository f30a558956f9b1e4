"""Command line with TF Serving's flag names: ``python -m serving.modelserver --port ...``."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from serving.modelserver.config import (
    BatchingSettings,
    ModelSettings,
    MonitoringSettings,
    load_model_config,
    parse_batching_parameters,
    parse_monitoring_config,
)
from serving.modelserver.server import ModelServer, ServerOptions


def _bool(text: str) -> bool:
    return text.lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    """Flags named and defaulted as tensorflow_model_server's (poll interval: 1 s here)."""
    parser = argparse.ArgumentParser(
        prog="python -m serving.modelserver",
        description="TF Serving-compatible model server (gRPC + REST) for machines without Docker.",
    )
    add = parser.add_argument
    add("--port", type=int, default=8500, help="gRPC port (0 = any free port)")
    add("--rest_api_port", type=int, default=8501, help="REST port (0 = any free port)")
    add("--host", default="0.0.0.0", help="address to bind the REST server to")
    add("--model_config_file", type=Path, help="text model_config_list file")
    add("--model_name", default="default", help="name of the single model (no config file)")
    add("--model_base_path", type=Path, help="folder of the single model's versions")
    add("--enable_batching", type=_bool, nargs="?", const=True, default=False)
    add("--batching_parameters_file", type=Path, help="text BatchingParameters file")
    add("--monitoring_config_file", type=Path, help="text MonitoringConfig file")
    add("--file_system_poll_wait_seconds", type=float, default=1.0)
    add("--grpc_max_threads", type=int, default=64)
    add(
        "--rest_api_num_threads",
        type=int,
        default=0,
        help="accepted; REST uses a thread per request",
    )
    add("--rest_api_timeout_in_ms", type=int, default=30000, help="accepted, not enforced")
    add("--log_level", default="INFO")
    return parser


def options_from_args(args: argparse.Namespace) -> ServerOptions:
    """Turn parsed flags into ServerOptions, reading the config files they name."""
    if args.model_config_file is not None:
        models = load_model_config(args.model_config_file)
    elif args.model_base_path is not None:
        models = [ModelSettings(args.model_name, args.model_base_path.resolve())]
    else:
        raise SystemExit("give --model_config_file or --model_base_path")
    batching = None
    if args.enable_batching:
        batching = BatchingSettings()
        if args.batching_parameters_file is not None:
            batching = parse_batching_parameters(args.batching_parameters_file.read_text())
    monitoring = MonitoringSettings()
    if args.monitoring_config_file is not None:
        monitoring = parse_monitoring_config(args.monitoring_config_file.read_text())
    return ServerOptions(
        models=models,
        port=args.port,
        rest_api_port=args.rest_api_port,
        host=args.host,
        batching=batching,
        monitoring=monitoring,
        poll_seconds=args.file_system_poll_wait_seconds,
        grpc_max_threads=args.grpc_max_threads,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until SIGTERM or SIGINT, then shut down gracefully and return 0."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = ModelServer(options_from_args(args))
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
