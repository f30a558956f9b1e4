"""Print a ready-to-paste curl per served model, from each model's own serving spec.

    PYTHONPATH=. python -m scripts.print_curls --model-repo model_repo --url http://127.0.0.1:8000

Reads ``models.config`` and the newest version's ``assets.extra/serving_spec.json`` of each
model, and prints ``POST /v1/models/<name>:predict`` with the spec's example instance, so a
model added by ``export_for_serving`` shows up here without any change to this script.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from serving import contract
from serving.spec import SPEC_FILE, load_spec


def model_names(repo: Path) -> list[str]:
    """The names in the repo's models.config, in order."""
    return contract.parse_model_names((repo / contract.MODELS_CONFIG_FILE).read_text("utf-8"))


def curl_for(repo: Path, name: str, url: str) -> str | None:
    """The curl for the newest version with a spec, or None (legacy or no version)."""
    for folder in reversed(contract.version_dirs(contract.model_dir(repo, name)).values()):
        path = folder / contract.ASSETS_DIR / SPEC_FILE
        if path.is_file():
            body = json.dumps({"inputs": load_spec(path).example})
            return (
                f"curl -s {url}/v1/models/{name}:predict "
                f"-H 'Content-Type: application/json' \\\n  -d {shlex.quote(body)}"
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Print one curl per model that has a spec."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, required=True)
    parser.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    # One line per problem, never a traceback: a repo without models.config (a model's folder
    # given), or a model whose newest spec does not load (a hand edit), printed one before.
    try:
        names = model_names(args.model_repo)
    except (OSError, ValueError) as error:  # UnicodeDecodeError, a bad config: ValueErrors
        print(f"print_curls: --model-repo {str(args.model_repo)!r}: {error}", file=sys.stderr)
        return 2
    for name in names:
        try:
            curl = curl_for(args.model_repo, name, args.url)
        except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
            print(f"print_curls: {name}: no curl, its spec does not load: {error}", file=sys.stderr)
            continue
        if curl:
            print(curl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
