"""Opt-in locust entry point: a step-load shape, direct gRPC users, per-step figures, SLOs.

Run through ``python -m loadtests.run`` (see loadtests/README.md), or directly:
``locust -f loadtests/stepload.py --headless --host URL --steps 1,4 MixedUser``. The shape
drives the user count and the run time, so locust's ``-u``, ``-r`` and ``-t`` do not apply
here; for a plain run with those use ``loadtests/locustfile.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc.experimental.gevent as grpc_gevent
from locust import LoadTestShape, events
from locust.env import Environment

from loadtests.served_models import ModelUser
from loadtests.slo import SLO_FILE, load_objectives, violations
from loadtests.step_options import positive_seconds, steps_text, warmup_problem, warmup_seconds
from loadtests.summary import StepRecorder
from loadtests.users import (
    GrpcProbeUser,
    GrpcUser,
    MixedUser,
    ProfileUser,
    QaUser,
    SimilarityUser,
)

__all__ = [
    "GrpcProbeUser",
    "GrpcUser",
    "MixedUser",
    "ModelUser",
    "ProfileUser",
    "QaUser",
    "SimilarityUser",
]
LOG = logging.getLogger("loadtests")


def listen(hook: Any, handler: Callable[..., None]) -> None:
    """Register handler on a locust event hook (a typed wrapper around ``add_listener``)."""
    hook.add_listener(handler)


def options_of(environment: Environment) -> Any:
    """The parsed command line of a run (locust parses it before any user starts)."""
    if environment.parsed_options is None:
        raise RuntimeError("loadtests needs locust's parsed command line options")
    return environment.parsed_options


def run_time(shape: Any) -> float:
    """Seconds since the shape started the run."""
    return float(shape.get_run_time())


def add_options(parser: Any) -> None:
    """The step profile, the direct backend and where the summary and SLOs live."""
    group = parser.add_argument_group("step load (loadtests/stepload.py)")
    group.add_argument(
        "--steps", type=steps_text, default="1,4,16,32,64", help="users per step, per user class"
    )
    group.add_argument("--step-seconds", type=positive_seconds, default=30.0, help="step duration")
    group.add_argument("--step-warmup", type=warmup_seconds, default=3.0, help="not measured")
    group.add_argument("--grpc-target", default="", help="model server gRPC host:port")
    group.add_argument("--model-repo", default="model_repo", help="for the gRPC tokenizers")
    group.add_argument("--slo-file", default=str(SLO_FILE), help="objectives to gate on")
    group.add_argument("--summary-file", default="", help="write the per-step summary JSON")


class StepLoadShape(LoadTestShape):
    """Holds each step's user count for ``--step-seconds``; every scaling class gets N users."""

    def tick(self) -> tuple[int, float] | None:
        """Total users for the current step (None ends the run)."""
        if self.runner is None:
            return None
        environment = self.runner.environment
        options = options_of(environment)
        index = int(run_time(self) // options.step_seconds)
        steps = parse_steps(options.steps)
        if index >= len(steps):
            return None
        classes = environment.user_classes
        fixed = sum(user_class.fixed_count for user_class in classes)
        scaling = sum(1 for user_class in classes if not user_class.fixed_count)
        total = steps[index] * scaling + fixed
        return total, float(total)  # spawn a step's users within a second


def on_request(
    shape: LoadTestShape,
    recorder: StepRecorder,
    name: str,
    response_time: float,
    exception: Exception | None,
    **_: Any,
) -> None:
    """Feed a finished request to the step recorder."""
    recorder.record(run_time(shape), name, response_time, exception is not None)


def on_quitting(recorder: StepRecorder, environment: Environment, **_: Any) -> None:
    """Write the summary, check the SLOs and set the process exit code."""
    options = options_of(environment)
    summary = recorder.summary()
    broken = violations(summary, load_objectives(Path(options.slo_file)))
    exceptions = len(environment.runner.exceptions) if environment.runner else 0
    if exceptions:
        broken.append(f"{exceptions} exceptions in user code (see the HTML report)")
    summary |= {
        "host": environment.host,
        "user_classes": [user_class.__name__ for user_class in environment.user_classes],
        "slo": {"passed": not broken, "violations": broken},
    }
    if options.summary_file:
        Path(options.summary_file).write_text(json.dumps(summary, indent=2) + "\n")
    for problem in broken:
        LOG.error("SLO broken: %s", problem)
    environment.process_exit_code = 1 if broken else 0


def parse_steps(text: str) -> list[int]:
    """``"1,4,16"`` -> ``[1, 4, 16]``."""
    return [int(value) for value in str(text).split(",") if value.strip()]


def attach_recorder(environment: Environment, **_: Any) -> None:
    """Record per-step figures when the step shape drives the run."""
    shape = environment.shape_class
    options = environment.parsed_options
    if shape is None or options is None:
        return
    problem = warmup_problem(options.step_seconds, options.step_warmup)
    if problem:  # python -m loadtests.run refuses it first; said here for direct runs
        LOG.error("%s (the summary will hold no request)", problem)
    if options.grpc_target:
        # grpcio blocks the whole gevent loop (every HTTP user) unless told to cooperate.
        grpc_gevent.init_gevent()
    recorder = StepRecorder(parse_steps(options.steps), options.step_seconds, options.step_warmup)
    listen(environment.events.request, partial(on_request, shape, recorder))
    listen(environment.events.quitting, partial(on_quitting, recorder))


# Locust reads its hooks and classes from this module: registering here is its documented way.
listen(events.init_command_line_parser, add_options)
listen(events.init, attach_recorder)
