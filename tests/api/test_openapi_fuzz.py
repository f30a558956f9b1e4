"""Schema fuzzing: requests generated from ``/openapi.json`` (schemathesis), on the real stack.

Every generated request, valid (positive) and invalid (negative) per the schema, must get a
documented status, no 5xx, and a body matching the documented response schema (schemathesis'
default checks). ``GATEWAY_FUZZ_EXAMPLES`` sets the cases per operation and mode: a few here
(CI), 500 per mode (1,000 per operation) with ``make fuzz``.
"""

from __future__ import annotations

import collections
import os
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES", "8"))
POSTS = [
    path
    for model in ("qa", "profile", "similarity")
    for path in (
        f"/v1/{model}",
        f"/v1/models/{model}:predict",
        f"/v1/models/{model}/versions/{{version}}:predict",
        f"/v1/models/{model}/labels/{{label}}:predict",
    )
]
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
# (method, path, mode); the GETs without parameters take no input, so there is no invalid
# request to generate; the architecture files take the version and label pins.
OPERATIONS = (
    [("POST", path, mode) for path in POSTS for mode in MODES]
    + [
        ("GET", path, GenerationMode.POSITIVE)
        for path in ("/v1/models", "/v1/models/qa", "/healthz", "/readyz", "/metrics")
    ]
    + [("GET", "/v1/models/qa/architecture.txt", mode) for mode in MODES]
)


def _request_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any] | None:
    """The operation's request body schema, with the components its references point to."""
    body = document["paths"][path][method.lower()].get("requestBody")
    if body is None:
        return None
    schema = body["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def _valid_request(schema: dict[str, Any] | None, case: schemathesis.Case[Any]) -> bool:
    """Whether the case's query pins and body are all valid (JSON Schema 2020-12)."""
    if schema is None or not isinstance(case.body, (dict, list)):
        return False
    if case.path_parameters or case.query or case.headers:
        return False  # a negated parameter or header: schemathesis' verdict stands
    return bool(jsonschema_rs.validator_for(schema).is_valid(case.body))


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_generated_requests_get_documented_answers(app_factory, method, path, mode) -> None:
    app = app_factory()
    operation = schemathesis.openapi.from_wsgi("/openapi.json", app)[path][method]
    statuses: collections.Counter[int] = collections.Counter()
    client = app.test_client()
    body_schema = _request_schema(client.get("/openapi.json").json, path, method)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # CI draws the same cases on every run
        database=None,
    )
    def check(case: schemathesis.Case[Any]) -> None:
        # Both pins at once is a documented 422 that a parameter schema cannot express.
        both = isinstance(case.query, dict) and {"version", "label"} <= set(case.query)
        excluded: list[schemathesis.CheckFunction] = [positive_data_acceptance] if both else []
        # schemathesis' negation of a "pattern" may draw a string that still matches it (seen:
        # text with letters as a "violation" of [\p{L}\p{N}]): judge such a case by the schema.
        if mode is GenerationMode.NEGATIVE and _valid_request(body_schema, case):
            excluded.append(negative_data_rejection)
        # Flask's client, buffered: it closes each answer (schemathesis' own werkzeug client
        # left a send_file answer's file to the gc: ResourceWarning in a later test).
        response = case.call_and_validate(session=client, excluded_checks=excluded or None)
        statuses[response.status_code] += 1

    check()
    print(f"\n{method} {path} {mode.value}: {sum(statuses.values())} cases {dict(statuses)}")
    assert not any(status >= 500 for status in statuses)
