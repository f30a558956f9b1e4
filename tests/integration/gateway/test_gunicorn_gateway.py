"""The gateway under real gunicorn -> the local model server over gRPC and REST.

One module-scoped model server on a repo copy with only version 1; the tests then add
version 2 (hot reload) and stop/restart the server (503, then recovery).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from serving.contract import (
    ASSETS_DIR,
    MODEL_CARD_FILE,
    MODEL_NAMES,
    MODELS_CONFIG_FILE,
    TOKENIZER_FILE,
)
from serving.gateway.launcher import RunningGateway, running_gateway
from serving.tokenization import file_sha256
from tests.support.model_server import ModelServerHandle, own_model_server, running_model_server

pytestmark = pytest.mark.slow
QA = {
    "article": "Mary moved to the kitchen. John went to the garden.",
    "question": "Where is Mary?",
}
PAIRS = {"pairs": [{"text_a": "a cat", "text_b": "a dog"}]}


@pytest.fixture(scope="module")
def repos(tiny_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A repo serving version 1, and a spare folder holding each model's version 2.

    Version 2 is version 1's SavedModel with a tokenizer file of the same vocabulary but other
    bytes, so its hash shows which version's tokenizer the gateway loaded.
    """
    root = tmp_path_factory.mktemp("gateway_integration")
    repo = Path(shutil.copytree(tiny_repo, root / "repo"))
    # The gateway lists models in models.config order (the generated file is sorted by name);
    # these tests look at qa first.
    blocks = "".join(
        f'  config {{ name: "{name}" base_path: "{name}" model_platform: "tensorflow" }}\n'
        for name in MODEL_NAMES
    )
    (repo / MODELS_CONFIG_FILE).write_text(f"model_config_list {{\n{blocks}}}\n")
    spare = root / "spare"
    for name in MODEL_NAMES:
        shutil.copytree(repo / name / "1", spare / name / "2")
        tokenizer = spare / name / "2" / ASSETS_DIR / TOKENIZER_FILE
        tokenizer.write_text(json.dumps(json.loads(tokenizer.read_text()), indent=1))
        # as exported: the card records the sha256 of the tokenizer shipped beside the model
        card_file = spare / name / "2" / ASSETS_DIR / MODEL_CARD_FILE
        card = json.loads(card_file.read_text())
        card["tokenizer_sha256"] = {TOKENIZER_FILE: file_sha256(tokenizer)}
        card_file.write_text(json.dumps(card))
    return repo, spare


@pytest.fixture(scope="module")
def server(repos: tuple[Path, Path]) -> Iterator[ModelServerHandle]:
    with own_model_server(repos[0], "the tests stop and restart it") as handle:
        yield handle


def _env(repo: Path, server: ModelServerHandle, backend: str) -> dict[str, str]:
    return {
        "GATEWAY_BACKEND": backend,
        "GATEWAY_GRPC_TARGET": server.grpc_target,
        "GATEWAY_REST_URL": server.rest_url,
        "GATEWAY_MODEL_REPO": str(repo),
        "GATEWAY_VERSION_POLL_SECONDS": "0.3",
        "GATEWAY_RETRIES": "1",
        "GATEWAY_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="module")
def grpc_gateway(repos, server) -> Iterator[RunningGateway]:
    with running_gateway(_env(repos[0], server, "grpc"), workers=2, threads=2) as gateway:
        yield gateway


def _wait_until(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def _all_endpoints(url: str) -> None:
    qa = requests.post(f"{url}/v1/qa", json=QA, headers={"X-Request-ID": "it-1"}, timeout=10)
    assert qa.status_code == 200, qa.text
    assert qa.headers["X-Request-ID"] == "it-1"
    assert qa.json()["model"] == {"name": "qa", "version": 1}
    profile = requests.post(f"{url}/v1/profile", json={"posts": ["hi", "there"]}, timeout=10)
    assert profile.status_code == 200, profile.text
    similarity = requests.post(f"{url}/v1/similarity", json=PAIRS, timeout=10)
    assert similarity.status_code == 200, similarity.text
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200


def test_grpc_gateway_under_gunicorn(grpc_gateway: RunningGateway) -> None:
    _all_endpoints(grpc_gateway.url)
    assert len(grpc_gateway.worker_pids()) == 2
    counted = 'gateway_requests_total{endpoint="/v1/qa",model="qa",status="200",version="1"}'
    deadline = time.monotonic() + 15  # the other worker's values come a flush later (README)
    while counted not in (metrics := requests.get(f"{grpc_gateway.url}/metrics", timeout=10).text):
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert counted in metrics
    deadline = time.monotonic() + 15  # access lines are held up to 0.1 s (README)
    while '"request_id": "it-1"' not in grpc_gateway.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert '"request_id": "it-1"' in grpc_gateway.log_text()


def test_rest_gateway_under_gunicorn(repos, server) -> None:
    with running_gateway(_env(repos[0], server, "rest"), workers=1, threads=2) as gateway:
        _all_endpoints(gateway.url)
        models = requests.get(f"{gateway.url}/v1/models", timeout=10).json()["models"]
        assert models[0]["signature"]["inputs"]["article_ids"]["dtype"] == "DT_INT32"


def test_hot_reload_routes_to_new_version_with_its_tokenizer(repos, grpc_gateway) -> None:
    repo, spare = repos
    url = grpc_gateway.url
    for name in MODEL_NAMES:
        staging = repo / name / ".incoming-2"  # hidden, then renamed: never half-visible
        shutil.copytree(spare / name / "2", staging)
        staging.rename(repo / name / "2")

    statuses: list[int] = []

    def on_version_2() -> bool:
        versions = set()
        for path, payload in (("qa", QA), ("similarity", PAIRS), ("profile", {"posts": ["a"]})):
            for _ in range(3):  # several requests: both workers must have switched
                answer = requests.post(f"{url}/v1/{path}", json=payload, timeout=10)
                statuses.append(answer.status_code)
                versions.add(answer.json().get("model", {}).get("version"))
        return versions == {2}

    _wait_until(on_version_2, timeout=60)
    assert set(statuses) == {200}, "a request failed during the reload"
    models = requests.get(f"{url}/v1/models", timeout=10).json()["models"]
    qa_model = next(model for model in models if model["name"] == "qa")
    routed = next(version for version in qa_model["versions"] if version["routed"])
    assert routed["version"] == 2
    tokenizer_2 = file_sha256(repo / "qa" / "2" / ASSETS_DIR / TOKENIZER_FILE)
    tokenizer_1 = file_sha256(repo / "qa" / "1" / ASSETS_DIR / TOKENIZER_FILE)
    assert routed["tokenizer_sha256"] == tokenizer_2 != tokenizer_1


def test_backend_stopped_gives_503_then_recovers(repos, server, grpc_gateway) -> None:
    url = grpc_gateway.url
    assert server.process is not None
    grpc_port = server.grpc_target.rsplit(":", 1)[1]
    rest_port = server.rest_url.rsplit(":", 1)[1]
    server.process.terminate()
    server.process.wait(timeout=30)
    down = requests.post(f"{url}/v1/qa", json=QA, timeout=10)
    assert down.status_code == 503
    assert set(down.json()) == {"error", "detail"}
    assert "Retry-After" in down.headers
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 503
    same_ports = [f"--port={grpc_port}", f"--rest_api_port={rest_port}"]
    with running_model_server(repos[0], extra_args=same_ports):
        _wait_until(
            lambda: requests.post(f"{url}/v1/qa", json=QA, timeout=10).status_code == 200,
            timeout=60,
        )
        # Each gunicorn worker has its own channel: /v1/qa answered by one says nothing of
        # the other's, which may still sit in its reconnect backoff (up to 1 s,
        # grpc.max_reconnect_backoff_ms) and answer /readyz 503 meanwhile: a bounded wait.
        _wait_until(
            lambda: requests.get(f"{url}/readyz", timeout=10).status_code == 200, timeout=60
        )
