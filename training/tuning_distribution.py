"""Distributed ``tune``: one chief (keras-tuner's oracle) and any number of workers.

keras-tuner reads three environment variables (``keras_tuner.src.distribute.utils``):
``KERASTUNER_TUNER_ID`` ("chief" for the oracle process, any other unique id for a worker),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` (where the chief serves its oracle
over gRPC). The chief hands out trials and records their results; workers ask it for a
trial, train it, report the score and ask again until ``--trials`` have been handed out.

``--chief`` / ``--worker ID`` with ``--oracle-host``/``--oracle-port`` set these variables
for the search only; setting the variables yourself works too. This module imports no
TensorFlow so that ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from serving.listening import check_can_listen

TUNER_ID = "KERASTUNER_TUNER_ID"
ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
CHIEF_ID = "chief"
DEFAULT_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Distribution:
    """This process's part in a distributed search."""

    tuner_id: str  # "chief", or a worker's id (e.g. "worker1"; never containing "chief")
    oracle_host: str  # the chief binds here; workers connect here
    oracle_port: int

    @property
    def is_chief(self) -> bool:
        """True for the oracle process (keras-tuner's rule: "chief" in the tuner id)."""
        return CHIEF_ID in self.tuner_id

    def environment(self) -> dict[str, str]:
        """The keras-tuner environment variables for this role."""
        return {
            TUNER_ID: self.tuner_id,
            ORACLE_IP: self.oracle_host,
            ORACLE_PORT: str(self.oracle_port),
        }


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {port}")
    return port


def worker_id(text: str) -> str:
    """An argparse type: a worker id; "worker" is prefixed to a bare number (``1`` ->
    ``worker1``). keras-tuner treats any id containing "chief" as the chief."""
    text = text.strip()
    if not text or CHIEF_ID in text.lower() or any(char.isspace() for char in text):
        raise argparse.ArgumentTypeError(f"invalid worker id {text!r}")
    return f"worker{text}" if text.isdigit() else text


def add_distribution_options(parser: argparse.ArgumentParser) -> None:
    """``--chief`` | ``--worker ID``, ``--oracle-host``, ``--oracle-port``."""
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--chief", action="store_true", help="serve the oracle to workers")
    role.add_argument("--worker", type=worker_id, metavar="ID", help="run trials for a chief")
    parser.add_argument(
        "--oracle-host", default=DEFAULT_HOST, help="chief: address to bind; worker: chief's"
    )
    parser.add_argument("--oracle-port", type=port_number, default=None, metavar="PORT")


def distribution_from_args(args: argparse.Namespace) -> Distribution | None:
    """The role given on the command line, else from the environment, else None.

    Raises:
        ValueError: ``--chief``/``--worker`` without ``--oracle-port``, or a port without a
            role, or an incomplete keras-tuner environment.
    """
    if args.chief or args.worker:
        if args.oracle_port is None:
            raise ValueError("--chief and --worker need --oracle-port")
        tuner_id = CHIEF_ID if args.chief else args.worker
        return Distribution(tuner_id, args.oracle_host, args.oracle_port)
    if args.oracle_port is not None:
        raise ValueError("--oracle-port needs --chief or --worker ID")
    return distribution_from_environment(os.environ)


def distribution_from_environment(environ: Mapping[str, str]) -> Distribution | None:
    """The role set through keras-tuner's variables, or None when ``KERASTUNER_ORACLE_IP``
    is unset (keras-tuner's own test for distributed mode)."""
    if ORACLE_IP not in environ:
        return None
    missing = [name for name in (TUNER_ID, ORACLE_PORT) if not environ.get(name)]
    if missing:
        raise ValueError(f"{ORACLE_IP} is set but {' and '.join(missing)} not")
    try:
        port = port_number(environ[ORACLE_PORT])
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"{ORACLE_PORT}: {error}") from None
    return Distribution(environ[TUNER_ID], environ[ORACLE_IP], port)


def oracle_bind_problem(distribution: Distribution) -> str | None:
    """Why the chief could not serve its oracle at its host and port, or None.

    Probed as gRPC will bind (``serving.listening.check_can_listen``): an address of another
    machine, a name that does not resolve or a port in use was a ``RuntimeError: Failed to
    bind`` traceback from keras-tuner's gRPC server, after the data was read (newuser9's trial).
    """
    host, port = distribution.oracle_host, distribution.oracle_port
    try:
        check_can_listen(host, port)
    except OSError as error:  # socket.gaierror too
        reason = error.strerror or type(error).__name__
        return (
            f"the chief cannot listen on --oracle-host {host!r} --oracle-port {port}: {reason} "
            "(the host must be an address of this machine, 0.0.0.0 for all; the port free)"
        )
    return None


@contextmanager
def distributed(distribution: Distribution | None) -> Iterator[None]:
    """Set keras-tuner's variables while building and running the tuner; restore after."""
    if distribution is None:
        yield
        return
    wanted = distribution.environment()
    before = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
