"""gunicorn settings for the gateway.

Run: ``gunicorn -c serving/gateway/gunicorn_conf.py "serving.gateway.app:create_app()"``.

Environment: ``GATEWAY_PORT`` (8000), ``GATEWAY_BIND_HOST`` (0.0.0.0), ``GATEWAY_WORKERS`` (2),
``GATEWAY_THREADS`` (4, gthread only), ``GATEWAY_WORKER_CLASS`` (gevent | gthread | a class
path), ``GATEWAY_WORKER_CONNECTIONS`` (1000, gevent only), ``GATEWAY_TIMEOUT`` (30 s),
``GATEWAY_GRACEFUL_TIMEOUT`` (20 s), ``GATEWAY_CONTROL_SOCKET`` (off),
``GATEWAY_CPU_AFFINITY`` (``off`` | ``per-worker``: :mod:`serving.gateway.affinity`),
``PROMETHEUS_MULTIPROC_DIR`` (metrics of all workers in one ``/metrics``), ``GRPC_EXPERIMENTS``
(grpcio's own; default here ``-event_engine_client``, see :data:`GRPC_EXPERIMENTS_DEFAULT`).
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client import multiprocess

from serving.gateway import affinity
from serving.gateway.gunicorn_values import ConfigValues
from serving.gateway.metrics_files import archive_dead_worker

# grpcio's client calls without its EventEngine (grpcio's documented GRPC_EXPERIMENTS variable,
# grpc/doc/environment_variables.md): the thread waiting for a call's completion queue then
# reads the answer off the socket itself, instead of an EventEngine poller thread waking an
# EventEngine worker thread that wakes it (two to three thread hops per answer). Measured
# (issue 9, loadtests/README.md rounds 7 and 16): a worker's CPU per qa request -11% at one
# client and -14% at eight; +8% at 32, where calls queue at a saturated model server and their
# waiting threads take turns at one poller. grpcio reads the variable once, when it is first
# imported: set here, before any worker imports it. A value the operator set wins.
GRPC_EXPERIMENTS_DEFAULT = "-event_engine_client"
os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS_DEFAULT)

# Every bad number or name of this file, printed one line each before the master stops.
_values = ConfigValues()
# TCP's ports (0: one the system picks); gunicorn's master raised OverflowError past 65535.
_port = _values.whole(os.environ.get("GATEWAY_PORT", "8000"), "GATEWAY_PORT", 0, 65535)
bind = f"{_values.bind_host(os.environ.get('GATEWAY_BIND_HOST', '0.0.0.0'))}:{_port}"
workers = _values.whole(os.environ.get("GATEWAY_WORKERS", "2"), "GATEWAY_WORKERS", 1)
worker_class = _values.worker_class(os.environ.get("GATEWAY_WORKER_CLASS", "gevent"))
threads = _values.whole(  # gthread only
    os.environ.get("GATEWAY_THREADS", "4"), "GATEWAY_THREADS", 1
)
worker_connections = _values.whole(  # gevent only
    os.environ.get("GATEWAY_WORKER_CONNECTIONS", "1000"), "GATEWAY_WORKER_CONNECTIONS", 1
)
timeout = _values.whole(  # 0: none
    os.environ.get("GATEWAY_TIMEOUT", "30"), "GATEWAY_TIMEOUT", 0
)
graceful_timeout = _values.whole(
    os.environ.get("GATEWAY_GRACEFUL_TIMEOUT", "20"), "GATEWAY_GRACEFUL_TIMEOUT", 0
)
keepalive = 5
# The app is built in each worker after the fork, so no gRPC channel or thread crosses a fork.
preload_app = False
accesslog = None  # the app writes JSON access lines itself
errorlog = "-"
logger_class = "serving.gateway.gunicorn_logs.JsonLogger"  # gunicorn's lines in JSON too
loglevel = _values.log_level(os.environ.get("GATEWAY_LOG_LEVEL", "info"))
max_requests = _values.whole(os.environ.get("GATEWAY_MAX_REQUESTS", "0"), "GATEWAY_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
cpu_affinity = _values.cpu_affinity(os.environ)
if _values.problems:
    print("\n".join(_values.problems), file=sys.stderr)
    sys.exit(2)
# gunicorn's default control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# every gateway on the host (make run, tests, a second instance) would fight over: it is off
# unless GATEWAY_CONTROL_SOCKET names a socket of this instance's own.
control_socket = os.environ.get("GATEWAY_CONTROL_SOCKET") or "/nonexistent/gunicorn.ctl"
control_socket_disable = "GATEWAY_CONTROL_SOCKET" not in os.environ


def on_starting(server: Any) -> None:
    """Warn of ``GATEWAY_*`` variables no setting reads (a misspelt name keeps its default);
    stop (exit 3, as gunicorn's "Worker failed to boot") on a model repo the gateway cannot
    serve from, read here once so a worker restarted later does not stop the gateway on it
    (``serving.gateway.catalog.StartCheck``); start with an empty metrics folder: files of a
    previous run would be summed in."""
    from pydantic import ValidationError

    from serving.gateway.catalog import check_at_start
    from serving.gateway.settings import GatewaySettings
    from serving.gateway.settings_messages import settings_errors, unknown_variables

    for message in unknown_variables(os.environ):
        server.log.warning(message)
    # gunicorn's own options (multihead-gateway --workers 0) override the checked settings
    # above, and gunicorn takes 0 too: a master without workers listened and never answered.
    for option, variable in (("workers", "WORKERS"), ("threads", "THREADS")):
        if getattr(server.cfg, option) < 1:
            server.log.error(
                "the gateway cannot start: --%s (GATEWAY_%s) must be >= 1, got %s",
                option,
                variable,
                getattr(server.cfg, option),
            )
            sys.exit(2)
    for address in server.cfg.address:  # --bind :99999 was an OverflowError traceback
        if isinstance(address, tuple) and not 0 <= address[1] <= 65535:
            server.log.error("the gateway cannot start: --bind port %s is not 0-65535", address[1])
            sys.exit(2)
    try:
        # Refused here, once: each worker refused them with a traceback, then gunicorn's
        # master halted with its own ("Worker failed to boot").
        settings = GatewaySettings()
        check_at_start(settings.model_repo, settings.models)
    except ValidationError as error:
        server.log.error("the gateway cannot start: %s", settings_errors(error))
        sys.exit(3)
    except (OSError, ValueError) as error:  # pydantic-settings' SettingsError too
        server.log.error("the gateway cannot start: %s", error)
        sys.exit(3)
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)
    else:
        own_metrics_folder(server)


# Where on_starting noted a metrics folder it made (the arbiter outlives a SIGHUP reload,
# which runs this file again).
MADE_FOLDER = "gateway_metrics_folder"


def own_metrics_folder(server: Any) -> None:
    """Without ``PROMETHEUS_MULTIPROC_DIR``: make a folder for it and set it, before any
    worker forks (:mod:`serving.gateway.metrics` reads it as it is imported in each worker);
    :func:`on_exit` removes it.

    Unset, each worker kept its own counts and ``/metrics`` answered with the one worker the
    scrape reached: a counter that came and went between scrapes (700, absent, 700), which
    Prometheus reads as resets, and no worker's counts summed. ``multihead-gateway`` from the
    wheel had no word of it (the Dockerfile and ``make run`` set it).
    """
    folder = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    setattr(server, MADE_FOLDER, folder)
    server.log.info("PROMETHEUS_MULTIPROC_DIR is not set: the workers' metrics go to %s", folder)


def on_exit(server: Any) -> None:
    """Remove the metrics folder :func:`own_metrics_folder` made, if it did."""
    folder = getattr(server, MADE_FOLDER, None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def pre_fork(server: Any, worker: Any) -> None:
    """With ``GATEWAY_CPU_AFFINITY=per-worker``: choose the worker's CPU (in the master)."""
    if cpu_affinity == "per-worker":
        affinity.assign(server.WORKERS.values(), worker)


def post_fork(server: Any, worker: Any) -> None:
    """Pin the worker to its CPU if one was chosen; log which worker started (its metrics
    files are named after its pid).

    The gateway's gevent worker turns grpcio's gevent mode on itself, after gevent patches the
    process (``serving.gateway.workers.GeventWorker.load_wsgi``); another gevent class named
    in ``GATEWAY_WORKER_CLASS`` gets it here, with gevent's hub pool: without it a Predict
    call would block the whole worker.
    """
    stop_while_booting()
    from serving.gateway.workers import GeventWorker

    if "gevent" in worker_class.lower() and not isinstance(worker, GeventWorker):
        from serving.gateway.grpc_gevent import init_grpc_gevent

        init_grpc_gevent(call_pool=False)
    cpu = affinity.pin(worker)
    where = "" if cpu is None else f" on CPU {cpu}"
    server.log.info("gateway worker %s started%s", worker.pid, where)


def stop_while_booting() -> None:
    """In a new worker: stop at once on SIGTERM, SIGINT or SIGQUIT until gunicorn installs
    the worker's own handlers (``Worker.init_signals``, after this hook and gevent's patching).

    Until then the worker has the master's handlers, which only queue a signal for the
    master's loop: a worker told to stop while it booted (a shutdown just after a restart,
    e.g. by ``GATEWAY_MAX_REQUESTS``) went on, and the master's stop waited
    ``graceful_timeout`` (20 s) to SIGKILL it. A booting worker holds no request to finish.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, _exit_now)  # SIGQUIT's default would dump core


def _exit_now(signum: int, frame: Any) -> None:
    sys.exit(0)  # as gunicorn's own SIGQUIT handler (Worker.handle_quit) does


def child_exit(server: Any, worker: Any) -> None:
    """Mark a dead worker's live gauges as gone and fold its counters and histograms into
    the archive files (prometheus multiprocess mode: ``serving.gateway.metrics_files``)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        # In the master: an error here (a full disk, the folder removed) stopped gunicorn's
        # main loop, the whole gateway (adversarial repo pass 6). The dead worker's files
        # stay then, read by every scrape as before.
        try:
            multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
            archive_dead_worker(folder, worker.pid)
        except (OSError, struct.error) as error:  # struct.error: a file cut short (corrupt)
            server.log.error("the metrics of worker %s cannot be folded: %s", worker.pid, error)
