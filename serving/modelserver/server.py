"""The ModelServer object: owns the models, the gRPC and REST servers and the metrics."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from werkzeug.serving import ThreadedWSGIServer

from serving.modelserver.config import BatchingSettings, ModelSettings, MonitoringSettings
from serving.modelserver.grpc_service import build_grpc_server, set_serving
from serving.modelserver.manager import ModelManager
from serving.modelserver.metrics import ServerMetrics
from serving.modelserver.rest import create_rest_app

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    """Everything the command line configures (TF Serving's flag meanings)."""

    models: list[ModelSettings]
    port: int = 8500
    rest_api_port: int = 8501
    host: str = "0.0.0.0"
    batching: BatchingSettings | None = None
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    poll_seconds: float = 1.0
    grpc_max_threads: int = 64
    shutdown_grace_seconds: float = 10.0


class ModelServer:
    """A TF Serving stand-in: start(), then stop() on SIGTERM; nothing global."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics = ServerMetrics()
        self.manager = ModelManager(
            options.models, self.metrics, options.batching, options.poll_seconds
        )
        self.grpc_port = 0
        self.rest_port = 0
        self._grpc_server, self.grpc_port, self._health = build_grpc_server(
            self.manager, self.metrics, options.port, options.grpc_max_threads
        )
        self._rest_server: ThreadedWSGIServer | None = None
        self._rest_thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the models (blocking, like TF Serving), then open the gRPC and REST ports."""
        self.manager.start()
        self._grpc_server.start()
        metrics_path = (
            self.options.monitoring.path if self.options.monitoring.enable else "/metrics"
        )
        app = create_rest_app(self.manager, self.metrics, metrics_path, self.manager.all_available)
        self._rest_server = ThreadedWSGIServer(self.options.host, self.options.rest_api_port, app)
        # Non-daemon request threads are joined on close, so in-flight requests finish.
        self._rest_server.daemon_threads = False
        self._rest_server.block_on_close = True
        self.rest_port = self._rest_server.server_port
        self._rest_thread = threading.Thread(
            target=self._rest_server.serve_forever, name="rest", daemon=True
        )
        self._rest_thread.start()
        set_serving(self._health, True)
        LOG.info("serving gRPC on port %d and REST on port %d", self.grpc_port, self.rest_port)

    def stop(self) -> None:
        """Stop accepting requests, let in-flight ones finish, then unload every model."""
        set_serving(self._health, False)
        grpc_done = self._grpc_server.stop(self.options.shutdown_grace_seconds)
        if self._rest_server is not None:
            self._rest_server.shutdown()
            self._rest_server.server_close()
        grpc_done.wait()
        self.manager.stop()
        LOG.info("stopped")
