"""``scripts/print_curls.py``: one generic curl per model, built from its own spec."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from scripts.print_curls import main, model_names
from serving import contract
from serving.spec import SPEC_FILE, load_spec


def test_one_curl_per_model_with_its_spec_example(tiny_repo: Path, capsys) -> None:
    assert main(["--model-repo", str(tiny_repo), "--url", "http://h:1"]) == 0
    printed = capsys.readouterr().out
    for name in model_names(tiny_repo):
        (folder,) = contract.version_dirs(tiny_repo / name).values()
        example = load_spec(folder / contract.ASSETS_DIR / SPEC_FILE).example
        line = next(line for line in printed.splitlines() if f"/v1/models/{name}:predict" in line)
        body_line = printed.splitlines()[printed.splitlines().index(line) + 1]
        body = shlex.split(body_line.strip())[1]
        assert json.loads(body) == {"inputs": example}
