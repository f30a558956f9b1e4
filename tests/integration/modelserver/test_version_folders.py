"""Issue 8: which folders are versions, partly copied versions, what status shows."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import grpc
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.integration.modelserver.helpers import wait_for
from tests.support.model_server import running_model_server


def statuses(rest_url: str) -> dict[str, dict[str, Any]]:
    reply = requests.get(f"{rest_url}/v1/models/m", timeout=10)
    assert reply.status_code == 200, reply.text
    return {entry["version"]: entry for entry in reply.json()["model_version_status"]}


def served_version(grpc_target: str) -> int:
    """The version that answers a Predict for the latest version (y = 0.5 * 2 + 2)."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "m"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto([2.0], dtype=tf.float32))
    with grpc.insecure_channel(grpc_target) as channel:
        reply = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=30
        )
    assert list(reply.outputs["y"].float_val) == [3.0]
    return int(reply.model_spec.version.value)


def publish(source: Path, target: Path) -> None:
    """Write elsewhere, then rename (what training's exporter does)."""
    staging = target.parent / f".staging-{target.name}"
    shutil.copytree(source, staging)
    staging.rename(target)


def test_version_folder_names_and_partly_copied_versions(conformance_repo, tmp_path, local_only):
    source = conformance_repo / "half_plus_two" / "00000123"
    model = tmp_path / "m"
    publish(source, model / "00000123")
    (tmp_path / "models.config").write_text(
        'model_config_list { config { name: "m" base_path: "m" model_platform: "tensorflow" } }'
    )
    # A long retry interval: only a change of the folder's files can make a retry happen soon.
    flags = ["--max_num_load_retries=5", "--load_retry_interval_micros=600000000"]
    with running_model_server(tmp_path, extra_args=flags) as server:
        assert set(statuses(server.rest_url)) == {"123"}
        # Not versions: past int64, a superscript digit, letters. A complete copy each.
        for name in ("99999999999999999999", "²", "12a"):
            publish(source, model / name)
        publish(source, model / "200")  # a later version in the same scan still loads
        wait_for(
            lambda: statuses(server.rest_url).get("200", {}).get("state") == "AVAILABLE", "200"
        )
        wait_for(lambda: statuses(server.rest_url)["123"]["state"] == "END", "123 unloaded")
        assert set(statuses(server.rest_url)) == {"123", "200"}
        assert "skipping folder '99999999999999999999'" in server.stderr_text()
        assert "skipping folder '²'" in server.stderr_text()
        shutil.rmtree(model / "99999999999999999999")
        assert served_version(server.grpc_target) == 200

        # Copied saved_model.pb first, variables/ later: fails, then loads once the files land.
        partial = model / "300"
        partial.mkdir()
        shutil.copy2(source / "saved_model.pb", partial / "saved_model.pb")
        wait_for(lambda: statuses(server.rest_url).get("300", {}).get("state") == "END", "fail")
        failed = statuses(server.rest_url)["300"]["status"]
        assert failed["error_code"] != "OK"
        assert str(tmp_path) not in failed["error_message"]  # no server paths to clients
        assert "details in the model server log" in failed["error_message"]
        assert served_version(server.grpc_target) == 200  # 200 keeps serving meanwhile
        shutil.copytree(source / "variables", partial / "variables")
        wait_for(lambda: statuses(server.rest_url)["300"]["state"] == "AVAILABLE", "retry")
