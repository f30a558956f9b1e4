"""Fixtures: one local model server per session (or an external TF Serving, see support)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from tests.support.model_server import ModelServerHandle, external_server, running_model_server

MAX_MESSAGE = 64 * 1024 * 1024


@pytest.fixture(scope="session")
def reference_repo(tiny_repo: Path) -> Path:
    """The repo the served models come from (an external server's copy if one is named)."""
    return Path(os.environ.get("TFSERVING_MODEL_REPO", str(tiny_repo)))


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, reference_repo: Path, tiny_repo: Path
) -> Iterator[ModelServerHandle]:
    """The model server under test, without batching: the session's (tests/conftest.py) when
    it serves the tiny repo, as it does unless TFSERVING_MODEL_REPO names another."""
    if reference_repo == tiny_repo:
        yield request.getfixturevalue("tiny_model_server")
        return
    with running_model_server(reference_repo) as handle:
        yield handle


@pytest.fixture(scope="session")
def channel(server: ModelServerHandle) -> Iterator[grpc.Channel]:
    options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(server.grpc_target, options=options) as opened:
        yield opened


@pytest.fixture(scope="session")
def prediction_stub(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def model_stub(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


@pytest.fixture
def local_only() -> None:
    """Skip a test that needs a repo it controls when an external server is used."""
    if external_server() is not None:
        pytest.skip("needs the local server (an external TF Serving is configured)")


@pytest.fixture(scope="session")
def conformance_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TF Serving test-model look-alikes (tests/support/tfserving_models.py)."""
    if "TFSERVING_CONFORMANCE_REPO" in os.environ:
        return Path(os.environ["TFSERVING_CONFORMANCE_REPO"])
    from tests.support.tfserving_models import build_conformance_repo

    return build_conformance_repo(tmp_path_factory.mktemp("conformance_repo"))


@pytest.fixture(scope="session")
def tfs(conformance_repo: Path) -> Iterator[ModelServerHandle]:
    """The server under test serving the conformance repo, with TF Serving's own flags.

    An external TF Serving must serve that repo (``python -m tests.support.tfserving_models
    DIR``, then ``TFSERVING_CONFORMANCE_REPO=DIR``); otherwise these tests are skipped.
    """
    extra = ["--rest_api_timeout_in_ms=30000", "--grpc_channel_arguments=grpc.so_reuseaddr=1"]
    with running_model_server(conformance_repo, extra_args=extra) as handle:
        if handle.external and "TFSERVING_CONFORMANCE_REPO" not in os.environ:
            pytest.skip("the external TF Serving does not serve the conformance repo")
        yield handle
