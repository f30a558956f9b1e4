"""``GET /v1/models/<name>/architecture.png|.txt``: the routed version's architecture files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from serving import contract
from tests.api.conftest import gateway_app

# The smallest valid PNG (1x1): the route serves bytes as they are, it does not decode them.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def repo_with_files(tiny_repo: Path, tmp_path: Path) -> Path:
    repo = Path(shutil.copytree(tiny_repo, tmp_path / "repo"))
    (version,) = contract.version_dirs(repo / "qa").values()
    assets = version / contract.ASSETS_DIR
    (assets / "summary.txt").write_text('Model: "qa"\n article_ids (InputLayer)\n')
    (assets / "model.png").write_bytes(PNG)
    # A version exported before architecture files existed (or without Graphviz).
    (profile,) = contract.version_dirs(repo / "profile").values()
    for name in ("summary.txt", "model.png"):
        (profile / contract.ASSETS_DIR / name).unlink(missing_ok=True)
    return repo


def test_picture_and_summary_of_the_routed_version(repo_with_files, model_server) -> None:
    with gateway_app(repo_with_files, model_server.grpc_target) as app:
        client = app.test_client()
        picture = client.get("/v1/models/qa/architecture.png")
        assert picture.status_code == 200 and picture.mimetype == "image/png"
        assert picture.data == PNG
        summary = client.get("/v1/models/qa/architecture.txt?version=1")
        assert summary.status_code == 200 and summary.mimetype == "text/plain"
        assert "article_ids" in summary.get_data(as_text=True)
        document = client.get("/openapi.json").get_json()
        assert "/v1/models/qa/architecture.png" in document["paths"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/models/profile/architecture.png", 404),  # exported without the files
        ("/v1/models/qa/architecture.svg", 404),
        ("/v1/models/nope/architecture.png", 404),
        ("/v1/models/qa/architecture.png?version=%C2%B2", 422),
        ("/v1/models/qa/architecture.png?version=99999999999999999999", 422),
        # Pinned by label like every other endpoint (no labels are configured here).
        ("/v1/models/qa/architecture.txt?label=stable", 404),
        ("/v1/models/qa/architecture.txt?version=1&label=stable", 422),
    ],
)
def test_missing_files_and_bad_pins(repo_with_files, model_server, path, status) -> None:
    with gateway_app(repo_with_files, model_server.grpc_target) as app:
        response = app.test_client().get(path)
    assert response.status_code == status
    assert set(response.get_json()) == {"error", "detail"}


def test_a_range_past_the_end_is_416_with_content_range(repo_with_files, model_server) -> None:
    # RFC 9110 section 15.5.17: a 416 to a byte range names the length, "bytes */LENGTH".
    with gateway_app(repo_with_files, model_server.grpc_target) as app:
        client = app.test_client()
        part = client.get("/v1/models/qa/architecture.png", headers={"Range": "bytes=0-3"})
        past = client.get("/v1/models/qa/architecture.png", headers={"Range": "bytes=9999-"})
        several = client.get("/v1/models/qa/architecture.png", headers={"Range": "bytes=0-1,2-3"})
    assert part.status_code == 206 and part.data == PNG[:4]
    assert several.status_code == 200 and several.data == PNG  # ignored, not 416
    assert past.status_code == 416 and set(past.get_json()) == {"error", "detail"}
    assert past.headers["Content-Range"] == f"bytes */{len(PNG)}"


def test_requests_are_counted_under_their_model_and_version(repo_with_files, model_server) -> None:
    # Found by a new-user trial: these requests were counted with an empty model label.
    with gateway_app(repo_with_files, model_server.grpc_target) as app:
        client = app.test_client()
        assert client.get("/v1/models/qa/architecture.txt").status_code == 200
        assert client.get("/v1/models/profile/architecture.png").status_code == 404
        assert client.get("/v1/models/qa").status_code == 200
        exposition = client.get("/metrics").get_data(as_text=True)
    counted = [
        line for line in exposition.splitlines() if line.startswith("gateway_requests_total")
    ]
    rule = 'endpoint="/v1/models/<name>/architecture.<extension>"'
    assert any(rule in line and 'model="qa"' in line and 'version="1"' in line for line in counted)
    assert any(
        rule in line and 'model="profile"' in line and 'status="404"' in line for line in counted
    )
    assert any('endpoint="/v1/models/<name>"' in line and 'model="qa"' in line for line in counted)
    assert not any('model=""' in line and "/v1/models/<name>" in line for line in counted)
