"""``/openapi.json`` is one document whatever the process: schema names that collide are
numbered in the endpoints' order, not in a set's (by object id) order.

Two models whose names differ only in separators ("qa-x", "qa_x") have schemas of one name
("QaXInstance"), which pydantic tells apart by longer names given in the order it meets
them. Met in the iteration order of a set of classes, each worker (each fresh build) named
them its own way: four different documents in eight builds of the same repo.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from serving.contract import ASSETS_DIR
from serving.gateway.openapi import openapi_document
from serving.gateway.runtime import ModelRuntime, load_runtime
from serving.gateway.settings import GatewaySettings
from serving.spec import SPEC_FILE, dump_spec, load_spec

NAMES = ("qa-x", "qa_x")


class Routed:
    """The registry's two methods the document reads: one routed version per model, no
    other version loaded."""

    def __init__(self, runtimes: dict[str, ModelRuntime]) -> None:
        self.runtimes = runtimes

    def routed_runtimes(self) -> dict[str, ModelRuntime]:
        return self.runtimes

    def pinnable_runtimes(self, model: str) -> list[ModelRuntime]:
        return []


def test_colliding_schema_names_are_numbered_alike_in_every_build(
    tiny_repo: Path, tmp_path: Path
) -> None:
    for name in NAMES:
        shutil.copytree(tiny_repo / "qa" / "1", tmp_path / name / "1")
    spec_file = tmp_path / NAMES[1] / "1" / ASSETS_DIR / SPEC_FILE
    spec = load_spec(spec_file)
    described = [spec.inputs[0].model_copy(update={"description": "Another story."})]
    spec_file.write_text(dump_spec(spec.model_copy(update={"inputs": described + spec.inputs[1:]})))
    documents = set()
    for _ in range(8):  # fresh runtimes: new classes, new ids, another set order
        runtimes = {name: load_runtime(tmp_path, name, 1, GatewaySettings()) for name in NAMES}
        document: Any = openapi_document(Routed(runtimes))  # type: ignore[arg-type]
        documents.add(hashlib.sha256(json.dumps(document, sort_keys=True).encode()).digest())
    assert len(documents) == 1
    first, second = (document["paths"][f"/v1/models/{name}:predict"] for name in NAMES)
    assert json.dumps(first) != json.dumps(second)  # each model's own schemas
