"""TF Serving's command line starts this server; models.config is re-read while serving.

Sources: tensorflow_serving/model_servers/test_util/tensorflow_model_server_test_base.py
(RunServer: the flags below), tensorflow_model_server_test.py:315 (testModelConfigReload),
:425 (testGoodGrpcChannelArgs), :604 (testPredictUDS).
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.integration.modelserver.helpers import wait_for
from tests.support.model_server import running_model_server

ENTRY = 'config { name: "%s" base_path: "%s" model_platform: "tensorflow" }'


def config_text(repo: Path, *names: str) -> str:
    return "model_config_list {\n" + "\n".join(ENTRY % (n, repo / n) for n in names) + "\n}\n"


def status_code(rest_url: str, name: str) -> int:
    return requests.get(f"{rest_url}/v1/models/{name}", timeout=10).status_code


def predict_x(target: str, name: str) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].dtype = tf.float32.as_datatype_enum
    request.inputs["x"].float_val.append(2.0)
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        return stub.Predict(request, timeout=30)


def test_tf_serving_command_line_and_config_reload(conformance_repo, tmp_path, local_only):
    repo = tmp_path / "repo"
    repo.mkdir()
    config = repo / "models.config"
    config.write_text(config_text(conformance_repo, "half_plus_two"))
    socket_path = tmp_path / "grpc.sock"
    flags = [
        "--rest_api_timeout_in_ms=30000",
        f"--grpc_socket_path={socket_path}",
        "--model_config_file_poll_wait_seconds=1",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb,"
        "grpc.so_reuseaddr=1",
        "--enable_serialization_as_tensor_content=true",
        "--enable_model_warmup=true",
        "--num_load_threads=2",
    ]
    with running_model_server(repo, extra_args=flags) as server:
        # test.py:604: the same Predict over the UNIX socket; the flag packs tensor_content
        reply = predict_x(f"unix:{socket_path}", "half_plus_two")
        assert tf.make_ndarray(reply.outputs["y"]).tolist() == 3.0
        assert reply.outputs["y"].tensor_content and not reply.outputs["y"].float_val
        assert "--num_load_threads=2 is accepted for compatibility and ignored" in (
            server.stderr_text()
        )

        # test.py:315: a new config replaces the served models without a restart
        config.write_text(config_text(conformance_repo, "half_plus_three", "strings"))
        wait_for(lambda: status_code(server.rest_url, "half_plus_three") == 200, "new model")
        wait_for(lambda: status_code(server.rest_url, "half_plus_two") == 404, "removed model")
        wait_for(lambda: status_code(server.rest_url, "strings") == 200, "second new model")
        reply = predict_x(server.grpc_target, "half_plus_three")
        assert tf.make_ndarray(reply.outputs["y"]).tolist() == 4.0

        # a config that does not parse keeps the models served
        config.write_text("model_config_list { config { name: ")
        wait_for(lambda: "re-reading" in server.stderr_text(), "the parse error logged")
        assert status_code(server.rest_url, "half_plus_three") == 200


@pytest.mark.parametrize(
    "flag",
    [
        "--port=²",
        "--port=99999999999999999999",
        "--max_num_load_retries=1_0",
        "--enable_batching=maybe",
    ],
)
def test_bad_numbers_and_booleans_stop_the_server_with_usage(flag):
    from serving.modelserver.main import build_parser

    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["--model_base_path=/nowhere", flag])
    assert raised.value.code == 2
