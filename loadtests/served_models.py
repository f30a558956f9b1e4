"""Load test any served model, your own included: ``POST /v1/models/NAME:predict`` per spec.

``locust -f loadtests/served_models.py --host http://127.0.0.1:8000 --headless -u 4 -r 4 -t 30s``
(``--models articles,reviews`` for some only). The users of ``loadtests/locustfile.py`` send
the qa, profile and similarity aliases with the bAbI, blog and STS samples, so against a repo
of other models every request of theirs is a 404. :class:`ModelUser` needs no samples: at
start it reads each model's routed spec from the gateway (``GET /v1/models/NAME``) and sends
its ``example``, alone or as a batch of 2 to 4 ``instances`` (one request in five), checking
that the answer carries every head's ``field`` (one prediction per instance) and the model's
name. ``python -m loadtests.run --users ModelUser`` runs it in the step-load profile.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from locust import HttpUser, constant, events, task
from locust.exception import StopUser

from loadtests.checks import (
    add_api_key_option,
    authorize,
    check_model_answer,
    post_checked,
    routed_examples,
)

BATCH_SHARE = 0.2
LOG = logging.getLogger("loadtests")


def add_model_options(parser: Any) -> None:
    """``--models``: the served models to load (comma-separated; default every routed one)."""
    parser.add_argument("--models", default="", help="models to load (default: every routed one)")
    add_api_key_option(parser)


hook: Any = events.init_command_line_parser
hook.add_listener(add_model_options)


class ModelUser(HttpUser):
    """Sends each chosen model's spec example to its ``:predict`` route and checks the answer."""

    wait_time = constant(0)

    def on_start(self) -> None:
        authorize(self.client.headers, self.environment.parsed_options.api_key)
        self.examples: dict[str, tuple[dict[str, Any], list[str]]] = {}
        wanted = [n.strip() for n in self.environment.parsed_options.models.split(",") if n.strip()]
        names = wanted
        if not wanted:
            listing = _body(self.client.get("/v1/models"), "/v1/models")
            if isinstance(listing, str):
                # One error line and exit code 1, not a traceback per user (predict raises
                # StopUser: from on_start locust logs a traceback).
                LOG.error("cannot load test: %s", listing)
                self.environment.process_exit_code = 1
                return
            names = [item["name"] for item in listing["models"]]
        details = {
            name: _body(
                self.client.get(f"/v1/models/{name}", name="/v1/models/NAME"), f"/v1/models/{name}"
            )
            for name in names
        }
        examples = routed_examples({n: d for n, d in details.items() if not isinstance(d, str)})
        missing = sorted(set(names) - set(examples))
        unanswered = [details[name] for name in missing if isinstance(details[name], str)]
        if unanswered:
            LOG.error("cannot load test: %s", unanswered[0])
            self.environment.process_exit_code = 1
            return
        if missing or not examples:
            LOG.error("no routed version with a spec for %s: see GET /v1/models", missing or names)
            self.environment.process_exit_code = 1
            return
        self.examples = examples

    @task
    def predict(self) -> None:
        """One request to a model drawn at random; a wrong answer is a failed request."""
        if not self.examples:
            raise StopUser()
        name = random.choice(sorted(self.examples))
        example, fields = self.examples[name]
        payload: dict[str, Any] = {"inputs": example}
        label = f"/v1/models/{name}:predict"
        if random.random() < BATCH_SHARE:
            payload, label = {"instances": [example] * random.randint(2, 4)}, label + " (batch)"
        post_checked(
            self.client,
            f"/v1/models/{name}:predict",
            payload,
            label,
            lambda body: check_model_answer(name, fields, payload, body),
        )


def _body(response: Any, what: str) -> Any:
    """The JSON body of a 200 answer about ``what`` (a model list holds ``models``), or a line
    saying what came instead. Found by the adversarial pass breaknew6b: a gateway that was
    unreachable, or asked for an API key not given (401), was a JSONDecodeError or KeyError
    traceback per user."""
    try:
        # status_code: locust's .ok raises the error of a request that got no answer
        body = response.json() if response.status_code == 200 else None
    except ValueError:  # requests' JSONDecodeError
        body = None
    if isinstance(body, dict) and (what != "/v1/models" or isinstance(body.get("models"), list)):
        return body
    if not response.status_code:
        return f"GET {what} got no answer: {response.error}"
    status = response.status_code
    hint = " (give its API key: --api-key or LOADTEST_API_KEY)" if status == 401 else ""
    return f"GET {what} answered HTTP {status}{hint}: {str(response.text or '')[:200]}"
