"""A model served from the folder its models.config ``base_path`` names, not its name.

Found by probing an edited models.config: ``name: "qa" base_path: "answers"`` is served by
the model server (TF Serving's reading), but the gateway read ``repo/qa`` for the version's
spec and tokenizer: the model was never routed (503), or, with an old ``repo/qa`` beside it,
routed with that folder's tokenizer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from serving.contract import MODELS_CONFIG_FILE
from tests.api.conftest import gateway_app
from tests.support.model_server import own_model_server

QA = {"article": "Mary went to the kitchen.", "question": "Where is Mary?"}
CONFIG = """model_config_list {
  config { name: "qa" base_path: "answers" model_platform: "tensorflow" }
}
"""


def test_a_model_is_read_from_its_base_path(tiny_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(tiny_repo / "qa", repo / "answers")
    (repo / MODELS_CONFIG_FILE).write_text(CONFIG)
    with (
        own_model_server(repo, "it serves its own repo") as server,
        gateway_app(repo, server.grpc_target) as app,
    ):
        client = app.test_client()
        answer = client.post("/v1/qa", json=QA)
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["model"] == {"name": "qa", "version": 1}
        (version,) = client.get("/v1/models/qa").get_json()["versions"]
        assert version["routed"] and version["error"] == ""
        assert client.get("/v1/models/qa/architecture.txt").status_code == 200
