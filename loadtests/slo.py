"""Service level objectives of a load test (``loadtests/slo.yaml``) and their evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

SLO_FILE = Path(__file__).parent / "slo.yaml"


class Objectives(BaseModel):
    """Failure ratio for every request, p95 latency per request name up to max_users."""

    failure_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    max_users: int = Field(default=32, ge=1)
    p95_ms: dict[str, float] = Field(default_factory=dict)


def load_objectives(path: Path = SLO_FILE) -> Objectives:
    """Read and validate an SLO file."""
    return Objectives.model_validate(yaml.safe_load(path.read_text()) or {})


def violations(summary: dict[str, Any], objectives: Objectives) -> list[str]:
    """Every broken objective in a run summary, as readable sentences (empty: all met)."""
    broken = []
    for step in summary["steps"]:
        users = step["users"]
        if not step["endpoints"]:
            broken.append(f"no request finished at {users} users (server stuck or too slow?)")
        for name, result in step["endpoints"].items():
            ratio = result["failures"] / max(result["requests"], 1)
            if ratio > objectives.failure_ratio:
                broken.append(
                    f"{name} at {users} users: failure ratio {ratio:.4f} "
                    f"> {objectives.failure_ratio}"
                )
            limit = objectives.p95_ms.get(name)
            if limit is not None and users <= objectives.max_users and result["p95_ms"] > limit:
                broken.append(f"{name} at {users} users: p95 {result['p95_ms']} ms > {limit} ms")
    return broken
