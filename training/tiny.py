"""Tiny but real models for tests: trained for one step on generated text, then exported.

Tests of the gateway and the model server use these instead of mocks, so every test runs
the production path (spec -> tokenizer.json -> ids -> SavedModel signature -> answer). The
built-in three go through ``export_for_serving`` with the specs of their training tasks;
:func:`export_spec_model` serves a model for any spec ("a model no training task knows").
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from serving import contract
from serving.encoding import encode_instances
from serving.spec import ServingSpec
from serving.tokenization import load_tokenizer
from training.export import export_for_serving
from training.tasks.profile import profile_spec
from training.tasks.qa import qa_spec
from training.tasks.similarity import similarity_spec
from training.tiny_legacy import legacy_assets
from training.tiny_models import (
    INCOME_GROUPS,
    profile_model,
    qa_model,
    similarity_model,
    spec_model,
)
from training.tokenization import SEP_TOKEN, train_tokenizer

PEOPLE = ("mary", "john", "sandra", "daniel")
PLACES = ("kitchen", "garden", "office", "bathroom", "hallway")
VERBS = ("moved to", "went to", "journeyed to", "travelled to")
Arrays = dict[str, np.ndarray]
INCOME_LABELS = tuple(f"group {index}" for index in range(INCOME_GROUPS))
INCOME_NOTE = "Tiny test model: the income head predicts an industry proxy."
LOSSES = {
    "answer_probs": "sparse_categorical_crossentropy",
    "age": "mse",
    "income_probs": "sparse_categorical_crossentropy",
    "gender_prob": "binary_crossentropy",
    "score": "mse",
}


def tiny_story(rng: random.Random, sentences: int = 4) -> tuple[str, str, str]:
    """A bAbI-like story, a question about one person in it, and the answer."""
    where: dict[str, str] = {}
    lines = []
    for _ in range(sentences):
        person, place = rng.choice(PEOPLE), rng.choice(PLACES)
        where[person] = place
        lines.append(f"{person.title()} {rng.choice(VERBS)} the {place}.")
    person = rng.choice(sorted(where))
    return " ".join(lines), f"Where is {person.title()}?", where[person]


def _corpus(rng: random.Random) -> list[str]:
    stories = [" ".join(tiny_story(rng)[:2]) for _ in range(50)]
    return [*stories, "the quick brown fox", "a person writes a blog post", SEP_TOKEN]


def tiny_specs(vocab: int) -> dict[str, ServingSpec]:
    """The specs of the tiny qa, profile and similarity models (the training tasks' specs)."""
    return {
        "qa": qa_spec(PLACES, 64, 8, vocab),
        "profile": profile_spec(
            64, None, vocab, INCOME_LABELS, ["tiny test model"] * INCOME_GROUPS, INCOME_NOTE
        ),
        "similarity": similarity_spec(32, vocab),
    }


def build_tiny_repo(repo: Path, versions: int = 1, seed: int = 7) -> Path:
    """Export tiny qa, profile and similarity models (``versions`` each) into repo."""
    keras.utils.set_random_seed(seed)
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="tiny-tokenizer-"))
    tokenizer_path = workdir / contract.TOKENIZER_FILE
    train_tokenizer(_corpus(rng), vocab_size=200).save(str(tokenizer_path))
    tokenizer = load_tokenizer(tokenizer_path)
    vocab = tokenizer.get_vocab_size()
    specs = tiny_specs(vocab)
    stories = [tiny_story(rng) for _ in range(8)]

    def encode(name: str, instances: list[dict[str, Any]]) -> Arrays:
        return encode_instances(specs[name], {contract.TOKENIZER_FILE: tokenizer}, instances)

    qa_inputs = encode("qa", [{"article": s[0], "question": s[1]} for s in stories])
    builders: dict[str, tuple[Callable[[], keras.Model], Arrays, Arrays]] = {
        "qa": (
            lambda: qa_model(vocab, len(PLACES)),
            qa_inputs,
            {"answer_probs": np.array([PLACES.index(s[2]) for s in stories])},
        ),
        "profile": (
            lambda: profile_model(vocab),
            encode("profile", [{"posts": [s[0], s[1]]} for s in stories]),
            {
                "age": np.full((8, 1), 25.0),
                "income_probs": np.arange(8) % 10,
                "gender_prob": np.arange(8) % 2,
            },
        ),
        "similarity": (
            lambda: similarity_model(vocab),
            encode("similarity", [{"text_a": s[0], "text_b": s[1]} for s in stories]),
            {"score": np.linspace(0, 1, 8).reshape(8, 1)},
        ),
    }
    for name, (build, inputs, targets) in builders.items():
        legacy = legacy_assets(name, specs[name], workdir)
        for _ in range(versions):
            model = build()
            model.compile(optimizer="adam", loss={key: LOSSES[key] for key in targets})
            model.fit(inputs, targets, epochs=1, batch_size=8, verbose=0)
            export_for_serving(
                model,
                specs[name],
                {contract.TOKENIZER_FILE: tokenizer_path},
                name=name,
                repo=repo,
                model_card={"description": f"tiny {name} model for tests", "preset": "tiny"},
                extra_assets=legacy,
            )
    return repo


def export_spec_model(
    repo: Path,
    spec: ServingSpec,
    name: str,
    tokenizers: Mapping[str, Path],
    *,
    seed: int = 7,
    version: int | None = None,
) -> Path:
    """Export an untrained tiny model with exactly ``spec``'s inputs and heads; return its folder.

    Every input's ``vocab_size`` must cover its tokenizer (``export_for_serving`` checks).
    """
    return export_for_serving(
        spec_model(spec, seed),
        spec,
        tokenizers,
        name=name,
        repo=repo,
        model_card={"description": f"tiny {name} model for tests", "preset": "tiny"},
        version=version,
    )
