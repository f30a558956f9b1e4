"""Varied, realistic request bodies drawn from the shipped sample files (``loadtests/data``).

Every call draws a new combination (story, question, ``top_k``, number of posts, pairs, batch
size), so a load test never replays one request and caches cannot flatter the figures.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
MAX_POSTS = 50
Payload = dict[str, Any]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file into a list of objects."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass(frozen=True)
class Samples:
    """The real stories, bloggers and sentence pairs requests are built from."""

    qa: list[dict[str, Any]]
    profile: list[dict[str, Any]]
    similarity: list[dict[str, Any]]

    @classmethod
    def load(cls, data_dir: Path = DATA_DIR) -> Samples:
        """Read ``qa.jsonl``, ``profile.jsonl`` and ``similarity.jsonl`` from data_dir."""
        return cls(
            qa=read_jsonl(data_dir / "qa.jsonl"),
            profile=read_jsonl(data_dir / "profile.jsonl"),
            similarity=read_jsonl(data_dir / "similarity.jsonl"),
        )


@dataclass(frozen=True)
class Mix:
    """How often a request is a batch and how large batches and collections get."""

    batch_ratio: float = 0.2
    max_instances: int = 8
    max_pairs: int = 16


class PayloadFactory:
    """Builds request bodies for the three endpoints with one user's random generator."""

    def __init__(self, samples: Samples, rng: random.Random, mix: Mix | None = None) -> None:
        self.samples = samples
        self.rng = rng
        self.mix = mix or Mix()

    def _batch_size(self) -> int:
        if self.rng.random() >= self.mix.batch_ratio:
            return 0
        return self.rng.randint(2, self.mix.max_instances)

    def qa_instance(self) -> Payload:
        """One story and question from a random bAbI task, with a random ``top_k``."""
        sample = self.rng.choice(self.samples.qa)
        top_k = self.rng.choice((1, 1, 1, 3, 5))
        return {"article": sample["article"], "question": sample["question"], "top_k": top_k}

    def qa(self) -> Payload:
        """A single question, or sometimes an ``instances`` batch of them."""
        size = self._batch_size()
        if size == 0:
            return self.qa_instance()
        return {"instances": [self.qa_instance() for _ in range(size)]}

    def post_count(self) -> int:
        """1 to 50 posts, most requests small: the corpus's bloggers have up to 12."""
        band = self.rng.random()
        if band < 0.6:
            return self.rng.randint(1, 12)
        if band < 0.9:
            return self.rng.randint(13, 30)
        return self.rng.randint(31, MAX_POSTS)

    def profile_instance(self) -> Payload:
        """One blogger's posts; a request for more posts than they wrote borrows from others."""
        wanted = self.post_count()
        blogger = self.rng.choice(self.samples.profile)
        posts = self.rng.sample(blogger["posts"], min(wanted, len(blogger["posts"])))
        while len(posts) < wanted:
            posts.append(self.rng.choice(self.rng.choice(self.samples.profile)["posts"]))
        return {"posts": posts}

    def profile(self) -> Payload:
        """A single profile, or sometimes a small ``instances`` batch (they are large)."""
        size = min(self._batch_size(), 4)
        if size == 0:
            return self.profile_instance()
        return {"instances": [self.profile_instance() for _ in range(size)]}

    def similarity(self) -> Payload:
        """1 to max_pairs STS pairs (most requests 1 to 4), each in a random order."""
        count = self.rng.randint(1, 4) if self.rng.random() < 0.8 else self.rng.randint(5, 16)
        pairs = []
        for sample in self.rng.sample(self.samples.similarity, min(count, self.mix.max_pairs)):
            text_a, text_b = sample["text_a"], sample["text_b"]
            if self.rng.random() < 0.5:
                text_a, text_b = text_b, text_a
            pairs.append({"text_a": text_a, "text_b": text_b})
        return {"pairs": pairs}


def instances_of(payload: Payload) -> list[Payload]:
    """The single requests inside a payload (itself, or the items of ``instances``)."""
    instances = payload.get("instances")
    return list(instances) if isinstance(instances, list) else [payload]
