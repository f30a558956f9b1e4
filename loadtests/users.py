"""Locust users: one per gateway endpoint, a weighted mix, and direct gRPC backend users.

Users have no think time, so the number of users is the number of requests in flight.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import HttpUser, TaskSet, User, constant, events, task

from loadtests.checks import add_api_key_option, authorize, check_response, post_checked
from loadtests.grpc_client import PredictClient, check_outputs
from loadtests.payloads import DATA_DIR, Payload, PayloadFactory, Samples, instances_of
from loadtests.tensors import ModelInputs
from serving.contract import MODEL_NAMES

# Realistic shares for the mix: questions are the interactive feature, similarity serves
# search-like flows, and a profile is computed once per person.
MIX_WEIGHTS = {"qa": 5, "similarity": 3, "profile": 2}


def endpoint_task(model: str) -> Callable[[Any], None]:
    """A locust task that sends one request for ``model`` through the user's ``call``."""

    def send(user: Any) -> None:
        user.call(model)

    send.__name__ = model
    return send


# One task table serves the HTTP and the gRPC mix; locust picks uniformly from the list, so a
# task listed N times has weight N.
MIXED_TASKS: list[TaskSet | Callable[..., Any]] = [
    endpoint_task(model) for model, weight in MIX_WEIGHTS.items() for _ in range(weight)
]


def add_user_options(parser: Any) -> None:
    """``--samples-dir``: every user draws its payloads from there (both locustfiles)."""
    group = parser.add_argument_group("loadtests users")
    group.add_argument("--samples-dir", default=str(DATA_DIR), help="request sample files")
    add_api_key_option(group)


# Registered once per process however many locustfiles import the users: the module is
# imported once, so the option is never added twice.
hook: Any = events.init_command_line_parser
hook.add_listener(add_user_options)


class CheckFailedError(Exception):
    """A backend answer that breaks the contract (missing output, wrong shape or range)."""


def request_name(prefix: str, model: str, payload: Payload) -> str:
    """The stats name of a request: batches of instances are reported apart."""
    suffix = " (batch)" if "instances" in payload else ""
    return f"{prefix}{model}{suffix}"


def factory_for(user: User) -> PayloadFactory:
    """A payload factory with its own random stream for one user."""
    samples_dir = Path(user.environment.parsed_options.samples_dir)
    return PayloadFactory(Samples.load(samples_dir), random.Random())


class GatewayUser(HttpUser):
    """Posts generated payloads to the gateway and checks every answer."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        authorize(self.client.headers, self.environment.parsed_options.api_key)
        self.payloads = factory_for(self)

    def call(self, model: str) -> None:
        """Send one generated request for a model; a wrong answer is a failure."""
        payload: Payload = getattr(self.payloads, model)()
        name = request_name("/v1/", model, payload)
        post_checked(
            self.client,
            f"/v1/{model}",
            payload,
            name,
            lambda body: check_response(model, payload, body),
        )


class QaUser(GatewayUser):
    """Only questions: ``POST /v1/qa``."""

    @task
    def qa(self) -> None:
        self.call("qa")


class ProfileUser(GatewayUser):
    """Only profiles: ``POST /v1/profile``."""

    @task
    def profile(self) -> None:
        self.call("profile")


class SimilarityUser(GatewayUser):
    """Only sentence pairs: ``POST /v1/similarity``."""

    @task
    def similarity(self) -> None:
        self.call("similarity")


class MixedUser(GatewayUser):
    """All three endpoints with realistic weights."""

    tasks = MIXED_TASKS


class GrpcUser(User):
    """Calls the model server's Predict directly with the tensors the gateway would send."""

    tasks = MIXED_TASKS
    wait_time = constant(0)

    def on_start(self) -> None:
        options = self.environment.parsed_options
        if not getattr(options, "grpc_target", ""):
            raise ValueError("GrpcUser needs loadtests/stepload.py and --grpc-target host:port")
        repo = Path(options.model_repo)
        self.inputs = {name: ModelInputs.from_repo(repo, name) for name in MODEL_NAMES}
        self.backend = PredictClient(options.grpc_target)
        self.payloads = factory_for(self)

    def on_stop(self) -> None:
        self.backend.close()

    def call(self, model: str) -> None:
        """Tokenise a generated request, time the Predict call alone and fire the event."""
        payload: Payload = getattr(self.payloads, model)()
        inputs = self.inputs[model]
        tensors = inputs.encode(payload)
        request = self.backend.request(model, inputs.version, tensors)
        batch = len(payload["pairs"]) if model == "similarity" else len(instances_of(payload))
        exception: Exception | None = None
        started = time.perf_counter()
        try:
            outputs = self.backend.predict(request)
            elapsed_ms = (time.perf_counter() - started) * 1000
            problem = check_outputs(model, outputs, batch)
            if problem:
                exception = CheckFailedError(problem)
            length = sum(array.nbytes for array in outputs.values())
        except Exception as error:  # every gRPC error is a failed request, not a crash
            elapsed_ms, length, exception = (time.perf_counter() - started) * 1000, 0, error
        self.environment.events.request.fire(
            request_type="grpc",
            name=request_name("grpc ", model, payload),
            response_time=elapsed_ms,
            response_length=length,
            exception=exception,
            context={},
        )


class GrpcProbeUser(GrpcUser):
    """One direct gRPC user whatever the step, to show backend latency beside the gateway's."""

    fixed_count = 1
