"""Version management: hot reload under load, half-written and broken versions, policies."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.integration.modelserver.helpers import QA_INPUTS, predict_request, wait_for
from tests.support.model_server import running_model_server

CONFIG = """model_config_list {
  config { name: "qa" base_path: "qa" model_platform: "tensorflow" }
  config {
    name: "qa_all"
    base_path: "qa"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
  }
}
"""


def versions(rest_url: str, name: str) -> dict[str, dict[str, Any]]:
    reply = requests.get(f"{rest_url}/v1/models/{name}", timeout=10).json()
    return {entry["version"]: entry for entry in reply["model_version_status"]}


def publish(source: Path, model_dir: Path, version: int) -> None:
    """Copy a version in the way training.export does: hidden folder, then rename."""
    staging = model_dir / f".staging-{version}-test"
    shutil.copytree(source, staging)
    staging.rename(model_dir / str(version))


class Streamer:
    """A client thread that sends Predict requests until stopped, recording the outcome."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.failures: list[str] = []
        self.versions_seen: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        request = predict_request("qa", QA_INPUTS)
        while not self.stop.is_set():
            try:
                reply = self.stub.Predict(request, timeout=30)
                self.versions_seen.append(reply.model_spec.version.value)
            except grpc.RpcError as error:
                self.failures.append(f"{error.code()}: {error.details()}")

    def __enter__(self) -> Streamer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)
        self.channel.close()


@pytest.fixture
def repo(tiny_repo: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_repo / "qa" / "1", tmp_path / "qa" / "1")
    (tmp_path / "models.config").write_text(CONFIG)
    return tmp_path


def test_hot_reload_half_written_and_broken_versions(repo: Path, tiny_repo: Path, local_only):
    source = tiny_repo / "qa" / "1"
    with running_model_server(repo) as server, Streamer(server.grpc_target) as streamer:
        wait_for(lambda: len(streamer.versions_seen) > 5, "first answers")
        # Still being written: a version folder without saved_model.pb and a staging folder.
        shutil.copytree(source / "variables", repo / "qa" / "3" / "variables")
        shutil.copytree(source, repo / "qa" / ".staging-4-abc")
        time.sleep(2.5)  # more than two poll intervals, so the poller has seen both
        assert set(versions(server.rest_url, "qa")) == {"1"}

        publish(source, repo / "qa", 2)
        wait_for(lambda: streamer.versions_seen[-1] == 2, "version 2 to serve")
        wait_for(lambda: versions(server.rest_url, "qa")["1"]["state"] == "END", "v1 unload")
        assert versions(server.rest_url, "qa")["2"]["state"] == "AVAILABLE"
        assert set(versions(server.rest_url, "qa_all")) == {"1", "2"}

        broken = repo / "qa" / "5"
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        wait_for(lambda: "5" in versions(server.rest_url, "qa"), "broken version reported")
        wait_for(lambda: versions(server.rest_url, "qa")["5"]["state"] == "END", "load failure")
        status = versions(server.rest_url, "qa")["5"]["status"]
        assert status["error_code"] != "OK"
        assert status["error_message"]
        seen_before = len(streamer.versions_seen)
        wait_for(lambda: len(streamer.versions_seen) > seen_before + 5, "more answers")
        assert set(streamer.versions_seen[seen_before:]) == {2}
    assert streamer.failures == []
    assert streamer.versions_seen[0] == 1


def test_labels_and_all_policy(repo: Path, tiny_repo: Path, local_only):
    publish(tiny_repo / "qa" / "1", repo / "qa", 2)
    with running_model_server(repo) as server:
        stub_channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(stub_channel)
        wait_for(lambda: len(versions(server.rest_url, "qa_all")) == 2, "both versions")
        latest = stub.Predict(predict_request("qa_all", QA_INPUTS), timeout=30)
        stable = stub.Predict(predict_request("qa_all", QA_INPUTS, label="stable"), timeout=30)
        pinned = stub.Predict(predict_request("qa_all", QA_INPUTS, version=1), timeout=30)
        assert (latest.model_spec.version.value, stable.model_spec.version.value) == (2, 1)
        assert pinned.model_spec.version.value == 1
        reply = requests.get(f"{server.rest_url}/v1/models/qa_all/labels/stable", timeout=10)
        assert [entry["version"] for entry in reply.json()["model_version_status"]] == ["1"]
        stub_channel.close()
