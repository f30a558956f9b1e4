"""deploy/compose.yaml: `docker compose config` when the plugin exists, else parsed checks."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import text_format

from training.tasks.registry import TASK_NAMES

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not compose_plugin(), reason="no docker compose plugin on this machine")
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    repo = tmp_path / "model_repo"
    repo.mkdir()
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"MODEL_REPO": str(repo), "PATH": "/usr/bin:/bin:/usr/local/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"tfserving", "gateway"}
    for service in services.values():
        name, _, tag = service["image"].rpartition(":")
        assert name and tag and tag != "latest", service["image"]
    assert services["tfserving"]["image"].startswith("tensorflow/serving:2.")
    assert services["gateway"]["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE.parent / services["gateway"]["build"]["context"] / "Dockerfile").exists()


def test_tfserving_serves_the_repo_unbatched_with_monitoring(compose: dict[str, Any]) -> None:
    service = compose["services"]["tfserving"]
    flags = dict(argument.removeprefix("--").partition("=")[::2] for argument in service["command"])
    assert flags["port"] == "8500" and flags["rest_api_port"] == "8501"
    # TF Serving's batching pads a request with its own first token id, not the spec's pad_id
    # (tensorflow_serving/batching/batching_util.cc): the gateway's coalescing batches instead.
    assert "enable_batching" not in flags and "batching_parameters_file" not in flags
    assert flags["monitoring_config_file"].startswith("/models/")
    # No authentication on TF Serving: reachable on the compose network only, not the host.
    assert "ports" not in service
    assert set(service["expose"]) == {"8500", "8501"}
    mounts = {volume["target"]: volume for volume in service["volumes"]}
    assert mounts["/models"]["read_only"] is True
    config_mount = mounts[flags["model_config_file"]]
    assert (COMPOSE.parent / config_mount["source"]).exists()
    assert "AVAILABLE" in " ".join(service["healthcheck"]["test"])


def test_gateway_waits_for_healthy_models(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["depends_on"]["tfserving"]["condition"] == "service_healthy"
    assert gateway["environment"]["GATEWAY_GRPC_TARGET"] == "tfserving:8500"
    assert gateway["environment"]["GATEWAY_MODEL_REPO"] == "/models"
    assert "8000:8000" in gateway["ports"]
    assert any(
        volume["target"] == "/models" and volume["read_only"] for volume in gateway["volumes"]
    )
    assert "/readyz" in " ".join(gateway["healthcheck"]["test"])


def parse_models_config(text: str) -> dict[str, str]:
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    return {model.name: model.base_path for model in config.model_config_list.config}


def test_models_config_is_valid_and_lists_every_model() -> None:
    # Every model training registers, and any model of your own (deploy/README.md, "Your own
    # model"), each at /models/<name> where the repo is mounted.
    models = parse_models_config((DEPLOY / "tfserving" / "models.config").read_text())
    assert set(TASK_NAMES) <= set(models)
    assert models == {name: f"/models/{name}" for name in models}


def health_check_models(command: str) -> list[str]:
    """The models a TF Serving health check (``for model in a b; do ...``) waits for."""
    found = re.search(r"for model in ([\w\s-]+?); do", command)
    assert found, command
    return found.group(1).split()


def test_tf_servings_health_check_waits_for_every_model_of_the_config(
    compose: dict[str, Any],
) -> None:
    # A model added to models.config (your own, deploy/README.md) but not to the health
    # check let the gateway start before it loaded; the lists are one now.
    models = parse_models_config((DEPLOY / "tfserving" / "models.config").read_text())
    command = compose["services"]["tfserving"]["healthcheck"]["test"][-1]
    assert sorted(health_check_models(command)) == sorted(models)


def test_gateway_reads_api_keys_from_a_secret(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    assert gateway["environment"]["GATEWAY_API_KEYS_FILE"] == "/run/secrets/gateway_api_keys"
    assert gateway["secrets"] == ["gateway_api_keys"]
    source = compose["secrets"]["gateway_api_keys"]["file"]
    assert source.startswith("${API_KEYS_FILE:-")
    example = COMPOSE.parent / source.removeprefix("${API_KEYS_FILE:-").removesuffix("}")
    lines = [line for line in example.read_text().splitlines() if line.strip()]
    assert lines and all(line.startswith("#") for line in lines), "the example holds no key"
