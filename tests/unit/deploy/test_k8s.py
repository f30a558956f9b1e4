"""deploy/k8s: every manifest valid against the Kubernetes schema (offline), and wired up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.unit.deploy.test_compose import health_check_models, parse_models_config

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(path for path in K8S.glob("*.yaml") if path.name != "kustomization.yaml")


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / name).read_text())
    return loaded


def container(name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = load(name)["spec"]["template"]["spec"]["containers"]
    return containers[0]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_manifest_is_valid(path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)


def test_kustomization_lists_every_manifest() -> None:
    assert sorted(load("kustomization.yaml")["resources"]) == [path.name for path in MANIFESTS]


def test_tfserving_probes_config_and_resources() -> None:
    tfserving = container("tfserving-deployment.yaml")
    assert (
        tfserving["image"]
        == yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())["services"]["tfserving"][
            "image"
        ]
    )
    assert tfserving["readinessProbe"]["httpGet"]["path"] == "/v1/models/qa"
    assert "AVAILABLE" in " ".join(tfserving["startupProbe"]["exec"]["command"])
    assert "--model_config_file=/config/models.config" in tfserving["args"]
    # Unbatched, as in compose (TF Serving's padding is each request's first id, not pad_id).
    assert not any("batching" in argument for argument in tfserving["args"])
    assert {"requests", "limits"} <= set(tfserving["resources"])
    config = load("tfserving-configmap.yaml")["data"]
    same_file = (ROOT / "deploy" / "tfserving" / "models.config").read_text()
    assert parse_models_config(config["models.config"]) == parse_models_config(same_file)
    # The startup probe waits for exactly the configured models (your own too).
    probe = tfserving["startupProbe"]["exec"]["command"][-1]
    assert sorted(health_check_models(probe)) == sorted(parse_models_config(same_file))


def test_configmap_matches_what_training_writes() -> None:
    from training.export import MONITORING_CONFIG

    config = load("tfserving-configmap.yaml")["data"]
    assert "batching_parameters.txt" not in config  # TF Serving runs unbatched
    assert config["monitoring.config"] == MONITORING_CONFIG


def test_gateway_probes_resources_service_and_autoscaler() -> None:
    gateway = container("gateway-deployment.yaml")
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"requests", "limits"} <= set(gateway["resources"])
    assert "cpu" in gateway["resources"]["requests"], "the CPU autoscaler needs a CPU request"
    environment = {item["name"]: item["value"] for item in gateway["env"]}
    assert environment["GATEWAY_GRPC_TARGET"] == "tfserving:8500"
    autoscaler = load("gateway-hpa.yaml")["spec"]
    assert (
        autoscaler["scaleTargetRef"]["name"] == load("gateway-deployment.yaml")["metadata"]["name"]
    )
    assert autoscaler["metrics"][0]["resource"]["name"] == "cpu"


@pytest.mark.parametrize("name", ["gateway", "tfserving"])
def test_services_select_their_pods(name: str) -> None:
    labels = load(f"{name}-deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    selector = load(f"{name}-service.yaml")["spec"]["selector"]
    assert selector.items() <= labels.items()
    ports = {port["name"] for port in container(f"{name}-deployment.yaml")["ports"]}
    assert {port["targetPort"] for port in load(f"{name}-service.yaml")["spec"]["ports"]} <= ports


def test_only_the_gateway_reaches_tfserving() -> None:
    policy = load("tfserving-networkpolicy.yaml")
    assert policy["kind"] == "NetworkPolicy"
    tfserving_labels = load("tfserving-deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= tfserving_labels.items()
    (rule,) = policy["spec"]["ingress"]
    gateway_labels = load("gateway-deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    (source,) = rule["from"]
    assert source["podSelector"]["matchLabels"].items() <= gateway_labels.items()
    assert {port["port"] for port in rule["ports"]} == {8500, 8501}


def test_gateway_api_keys_come_from_a_required_secret() -> None:
    spec = load("gateway-deployment.yaml")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    environment = {item["name"]: item.get("value") for item in container["env"]}
    mount = next(item for item in container["volumeMounts"] if item["name"] == "api-keys")
    assert environment["GATEWAY_API_KEYS_FILE"].startswith(mount["mountPath"] + "/")
    volume = next(item for item in spec["volumes"] if item["name"] == "api-keys")
    assert volume["secret"]["optional"] is False
