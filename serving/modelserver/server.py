"""The ModelServer object: owns the models, the gRPC and REST servers and the metrics."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cheroot import wsgi

from serving.listening import check_can_listen
from serving.models_config import EmptyConfigError
from serving.modelserver.config import (
    BatchingSettings,
    ModelSettings,
    MonitoringSettings,
    load_model_config,
)
from serving.modelserver.grpc_server import GrpcSettings, build_grpc_server, set_serving
from serving.modelserver.grpc_service import MAX_MESSAGE_BYTES
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import create_rest_app
from serving.modelserver.rest_http import harden
from serving.modelserver.versions import RetryPolicy

LOG = logging.getLogger(__name__)
SERVER_HEADER = "modelserver"  # no version banner
# A REST request's line and headers together (rest_http.harden). The gateway sends well under
# 10 KB (gunicorn's own limits for the gateway's clients: a 4 KB request line, 100 headers of
# 8 KB).
MAX_REST_HEADER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """Everything the command line configures (TF Serving's flag meanings)."""

    models: list[ModelSettings]
    rest_api_port: int = 8501
    host: str = "127.0.0.1"  # loopback unless --host says otherwise (gRPC and REST)
    grpc: GrpcSettings = field(default_factory=GrpcSettings)
    batching: BatchingSettings | None = None
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    poll_seconds: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    model_config_file: Path | None = None
    config_poll_seconds: float = 0.0  # --model_config_file_poll_wait_seconds (0: never)
    rest_api_num_threads: int = 32
    # --rest_api_timeout_in_ms: TF Serving's default 30 s; <= 0 sets no deadline.
    rest_api_timeout_in_ms: int = 30_000
    # --allow_version_labels_for_unavailable_models: serving/modelserver/labels.py
    allow_unavailable_labels: bool = False
    shutdown_grace_seconds: float = 10.0

    @property
    def rest_timeout_seconds(self) -> float | None:
        """A REST predict's deadline in seconds; None for none (TF Serving sets one only when
        the flag is > 0: ``HttpRestApiHandler``)."""
        timeout_ms = self.rest_api_timeout_in_ms
        return timeout_ms / 1000 if timeout_ms > 0 else None


def port_problems(options: ServerOptions) -> list[str]:
    """Why the server could not listen where ``options`` say, checked before any model loads:
    the same port given twice, or one that cannot be bound (in use, not an address of this
    machine). Each was a traceback (grpc's ``RuntimeError: Failed to bind``, cheroot's
    ``OSError: No socket could be created``), the REST one only once every model had loaded
    (newuser9's trial). Probed by ``serving.listening.check_can_listen``."""
    ports = {"--port": options.grpc.port, "--rest_api_port": options.rest_api_port}
    if ports["--port"] == ports["--rest_api_port"] != 0:
        return [f"--port and --rest_api_port are both {options.grpc.port}: give each its own"]
    problems = []
    for flag, port in ports.items():
        try:
            check_can_listen(options.host, port)
        except OSError as error:  # socket.gaierror too
            reason = error.strerror or type(error).__name__
            problems.append(f"{flag} {port}: cannot listen on {options.host}:{port}: {reason}")
    return problems


class ModelServer:
    """A TF Serving stand-in: start(), then stop() on SIGTERM; nothing global."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = ServerMetrics()
        self.manager = ModelManager(
            options.models,
            self.metrics,
            options.batching,
            options.poll_seconds,
            options.retry,
            allow_unavailable_labels=options.allow_unavailable_labels,
        )
        self._grpc_server, self.grpc_port, self._health = build_grpc_server(
            self.manager, self.metrics, options.grpc
        )
        self.rest_port = 0
        self._rest_server: wsgi.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        """Load the models (blocking, like TF Serving), then open the gRPC and REST ports."""
        self.manager.start()
        self._grpc_server.start()
        metrics_path = (
            self.options.monitoring.path if self.options.monitoring.enable else "/metrics"
        )
        app = create_rest_app(
            self.manager,
            self.metrics,
            metrics_path,
            self.manager.all_available,
            timeout_seconds=self.options.rest_timeout_seconds,
        )
        # cheroot: a production thread-pool WSGI server that finishes in-flight requests on stop.
        self._rest_server = wsgi.Server(
            (self.options.host, self.options.rest_api_port),
            app,
            numthreads=self.options.rest_api_num_threads,
            server_name=SERVER_HEADER,
            shutdown_timeout=int(self.options.shutdown_grace_seconds),
        )
        harden(self._rest_server, MAX_MESSAGE_BYTES, MAX_REST_HEADER_BYTES)
        self._rest_server.prepare()
        self.rest_port = int(self._rest_server.bind_addr[1])
        self._start_thread("rest", self._rest_server.serve)
        if self.options.model_config_file is not None and self.options.config_poll_seconds > 0:
            self._start_thread("config-poller", self._watch_config)
        set_serving(self._health, True)
        LOG.info("serving gRPC on port %d and REST on port %d", self.grpc_port, self.rest_port)

    def stop(self) -> None:
        """Stop accepting requests, let in-flight ones finish, then unload every model."""
        self._stopping.set()
        set_serving(self._health, False)
        # Queued requests leave now: waiting out a long batch_timeout_micros would outlast
        # the grace period and cancel them.
        self.manager.flush_batches()
        grpc_done = self._grpc_server.stop(self.options.shutdown_grace_seconds)
        if self._rest_server is not None:
            self._rest_server.stop()
        grpc_done.wait()
        for thread in self._threads:
            thread.join()
        self.manager.stop()
        LOG.info("stopped")

    def _start_thread(self, name: str, target: Callable[[], object]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _watch_config(self) -> None:
        """Re-read models.config as TF Serving does: added models load, removed ones unload."""
        path = self.options.model_config_file
        assert path is not None
        last_text = path.read_text() if path.is_file() else ""
        while not self._stopping.wait(self.options.config_poll_seconds):
            try:
                text = path.read_text()
                if text == last_text:
                    continue
                models = load_model_config(path, empty_ok=False)
            except EmptyConfigError:
                # A file truncated to be rewritten: TF Serving's ServerCore::ReloadConfig takes
                # no action for it (unloading every model until the write ends would fail
                # every request); an explicit `model_config_list {}` does remove them all.
                LOG.info("Taking no action for empty config %s", path)
                last_text = text
                continue
            except (OSError, ValueError) as error:  # keep serving the last good config
                LOG.error("re-reading %s failed, keeping the current models: %s", path, error)
                continue
            last_text = text
            LOG.info("model config changed: serving %s", [model.name for model in models])
            self.manager.update_models(models)
