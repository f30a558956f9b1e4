"""Print a ready-to-paste curl per served model, from each model's own serving spec.

    PYTHONPATH=. python -m scripts.print_curls --model-repo model_repo --url http://127.0.0.1:8000

Reads ``models.config`` and the newest version's ``assets.extra/serving_spec.json`` of each
model, and prints ``POST /v1/models/<name>:predict`` with the spec's example instance, so a
model added by ``export_for_serving`` shows up here without any change to this script. The
first API's aliases (``/v1/qa``, ``/v1/profile``, ``/v1/similarity``) are printed only for the
models of those names that the repo serves: any other name answers them 404 (a repo of your
own models only); and, for a model with a spec, only when it answers the alias (its request
fields, the heads it reads: a model of your own named ``qa`` answers ``:predict`` only).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from serving import contract, models_config
from serving.gateway.alias_heads import FIELDS, alias_problem
from serving.spec import SPEC_FILE, ServingSpec, load_spec
from serving.url_paths import model_url_path

# The aliases' request shapes (serving/gateway/aliases.py), one or two curls per alias.
ALIAS_BODIES: dict[str, list[dict[str, object]]] = {
    "qa": [
        {
            "article": "Mary moved to the bathroom. John went to the hallway.",
            "question": "Where is Mary?",
            "top_k": 3,
        },
        {
            "instances": [
                {"article": "Mary went to the garden.", "question": "Where is Mary?"},
                {"article": "John moved to the office.", "question": "Where is John?"},
            ]
        },
    ],
    "profile": [
        {
            "posts": [
                "Finally finished my thesis draft today, time to celebrate with friends.",
                "Work was long, the new project at the office keeps me busy.",
            ]
        }
    ],
    "similarity": [
        {"pairs": [{"text_a": "A plane is taking off.", "text_b": "An air plane is taking off."}]}
    ],
}


def _curl(url: str, path: str, body: object) -> str:
    return (
        f"curl -s {url}{path} -H 'Content-Type: application/json' \\\n"
        f"  -d {shlex.quote(json.dumps(body))}"
    )


def alias_curls(names: Sequence[str], url: str, repo: Path | None = None) -> list[str]:
    """The alias curls of the served models among qa, profile and similarity; with ``repo``,
    only of those whose newest spec answers the alias (its request fields, the heads it reads:
    ``serving.gateway.alias_heads``): a model of your own named ``qa`` got /v1/qa curls that
    answered 422 or 502. A model without a readable spec (a legacy version) keeps them."""
    return [
        _curl(url, f"/v1/{name}", body)
        for name in names
        if repo is None or _answers_alias(repo, name)
        for body in ALIAS_BODIES.get(name, [])
    ]


def _answers_alias(repo: Path, name: str) -> bool:
    try:
        spec = newest_spec(repo, name)
    except (OSError, ValueError):  # reported by the call without --aliases
        return True
    if spec is None:
        return True
    fields = {item.field for item in spec.inputs}
    return fields == FIELDS.get(name, fields) and alias_problem(name, spec) is None


def newest_spec(repo: Path, name: str) -> ServingSpec | None:
    """The newest version's spec, or None (legacy or no version). Raises OSError or
    ValueError (pydantic's ValidationError) for one that does not load."""
    for folder in reversed(contract.version_dirs(contract.model_dir(repo, name)).values()):
        path = folder / contract.ASSETS_DIR / SPEC_FILE
        if path.is_file():
            return load_spec(path)
    return None


def model_names(repo: Path) -> list[str]:
    """The names in the repo's models.config, in order."""
    return models_config.parse_model_names((repo / contract.MODELS_CONFIG_FILE).read_text("utf-8"))


def curl_for(repo: Path, name: str, url: str) -> str | None:
    """The curl for the newest version with a spec, or None (legacy or no version)."""
    spec = newest_spec(repo, name)
    if spec is None:
        return None
    return _curl(url, f"{model_url_path(name)}:predict", {"inputs": spec.example})


def main(argv: Sequence[str] | None = None) -> int:
    """Print the alias curls of the served aliased models, then one curl per model with a spec."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument(
        "--aliases", action="store_true", help="print only the /v1/qa-style alias curls"
    )
    args = parser.parse_args(argv)
    # One line per problem, never a traceback: a repo without models.config (a model's folder
    # given), or a model whose newest spec does not load (a hand edit), printed one before.
    try:
        names = model_names(args.model_repo)
    except (OSError, ValueError) as error:  # UnicodeDecodeError, a bad config: ValueErrors
        print(f"print_curls: --model-repo {str(args.model_repo)!r}: {error}", file=sys.stderr)
        return 2
    if args.aliases:
        for alias in alias_curls(names, args.url, args.model_repo):
            print(alias)
        return 0
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
