"""A request waiting for the model server holds no tokenizer encoding (hostile input pass).

A cut encoding still holds its whole text's tokens (``Encoding.truncate`` keeps the rest as
``overflowing``), and a request kept its encodings of every input through the model call:
16 profiles of 1 MB of one-letter words in flight took a gevent worker from 86 MB to 704 MB
(268 MB now). Checked on the real path (Flask test client, real gRPC model server): when the
backend is called, nothing reachable from the request's frames is an ``Encoding``.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from flask import Flask
from tokenizers import Encoding

from serving.gateway.app import create_app
from serving.gateway.backends.grpc_backend import GrpcBackend
from tests.api.conftest import gateway_settings
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import close_app

STORY = "Mary went to the kitchen. John moved to the garden. "
MAX_DEPTH = 6  # frame local -> Encoded -> dict -> list -> Encoding, and a margin


def _reachable_encodings(frame: FrameType | None) -> int:
    """Encodings reachable from the locals of ``frame`` and its callers (through containers,
    dataclasses and the project's own objects; not through the app, the registry or
    modules)."""
    found, seen = 0, set()
    todo: list[tuple[Any, int]] = []
    while frame is not None:
        todo += [(value, 0) for value in frame.f_locals.values()]
        frame = frame.f_back
    while todo:
        value, depth = todo.pop()
        if id(value) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(value))
        if isinstance(value, Encoding):
            found += 1
        elif isinstance(value, dict):
            todo += [(item, depth + 1) for item in value.values()]
        elif isinstance(value, list | tuple | set):
            todo += [(item, depth + 1) for item in value]
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            todo += [(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)]
    return found


class ObservedBackend(GrpcBackend):
    """The real gRPC backend, noting what the request holds when the model is called."""

    held: list[int]

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.held.append(_reachable_encodings(sys._getframe(1)))
        return super().predict(*args, **kwargs)


@pytest.fixture
def observed(tiny_repo: Path, model_server: ModelServerHandle) -> Iterator[tuple[Flask, Any]]:
    backend = ObservedBackend(model_server.grpc_target, timeout_seconds=5.0)
    backend.held = []
    app = create_app(gateway_settings(tiny_repo), backend=backend)
    try:
        yield app, backend
    finally:
        close_app(app)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/qa", {"article": STORY * 40, "question": "Where is Mary?"}),
        ("/v1/qa", {"instances": [{"article": STORY * 40, "question": "Where is Mary?"}] * 3}),
        ("/v1/profile", {"posts": [STORY * 20] * 30}),
        ("/v1/similarity", {"pairs": [{"text_a": STORY * 9, "text_b": STORY * 7}] * 4}),
        ("/v1/models/qa:predict", {"inputs": {"article": STORY * 40, "question": "Who?"}}),
    ],
)
def test_no_encoding_is_held_while_the_model_is_called(observed, path, body) -> None:
    app, backend = observed
    response = app.test_client().post(path, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert backend.held and backend.held[-1] == 0, backend.held
