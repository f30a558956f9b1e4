"""The mixed load of issue 9 for the benchmark: 5 qa : 3 similarity : 2 profile single requests.

Bodies are drawn once, before any cell is measured, from the shipped samples
(``loadtests/data``, :class:`loadtests.payloads.PayloadFactory` with no ``instances`` batches)
with a fixed seed, and JSON-encoded once: a client then only picks the next prepared body, so
the load generator spends its CPU on sockets, not on building requests. Every client starts
at its own offset of the same sequence, so all paths and cells see the same requests.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import cycle
from typing import TypeVar

from loadtests.payloads import DATA_DIR, Mix, Payload, PayloadFactory, Samples

STORY = (
    "Mary moved to the bathroom. John went to the hallway. Daniel travelled to the office. "
    "Sandra journeyed to the garden. Mary went to the kitchen."
)
# One fixed, typical body per endpoint: the per-endpoint cells of the benchmark.
PAYLOADS: dict[str, Payload] = {
    "qa": {"article": STORY, "question": "Where is Mary?"},
    "profile": {"posts": ["Long day at work, then the garden.", "Reading about cooking today."]},
    "similarity": {
        "pairs": [{"text_a": "A man plays a guitar.", "text_b": "A person plays music."}]
    },
}
WEIGHTS = {"qa": 5, "similarity": 3, "profile": 2}  # the MixedUser's weights (README)
SEED = 9  # issue 9
SINGLE = Mix(batch_ratio=0.0)  # single requests: no `instances` batches
Item = TypeVar("Item")


@dataclass(frozen=True)
class MixedRequest:
    """One prepared request: its endpoint, the body as a dict and JSON-encoded."""

    endpoint: str
    payload: Payload
    body: bytes


def endpoint_sequence(count: int, seed: int = SEED) -> list[str]:
    """``count`` endpoint names in the 5:3:2 proportions, shuffled with a fixed seed.

    Whole rounds of ten keep the proportions exact for every multiple of 10.
    """
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < count:
        round_ = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
        rng.shuffle(round_)
        names.extend(round_)
    return names[:count]


def mixed_requests(count: int = 500, seed: int = SEED) -> list[MixedRequest]:
    """``count`` single requests drawn from the sample files (or, without them, the bench's
    fixed payloads: a clone without ``loadtests/data`` still runs the mix)."""
    if not (DATA_DIR / "qa.jsonl").exists():
        fixed = [(name, PAYLOADS[name]) for name in endpoint_sequence(count, seed)]
        return [MixedRequest(name, body, json.dumps(body).encode()) for name, body in fixed]
    factory = PayloadFactory(Samples.load(), random.Random(seed), SINGLE)
    draw: dict[str, Callable[[], Payload]] = {
        "qa": factory.qa,
        "similarity": factory.similarity,
        "profile": factory.profile,
    }
    requests = []
    for name in endpoint_sequence(count, seed):
        payload = draw[name]()
        requests.append(MixedRequest(name, payload, json.dumps(payload).encode()))
    return requests


def rotating(items: Sequence[Item]) -> Callable[[], Item]:
    """A picker that gives each calling thread the items in order, from its own offset."""
    local = threading.local()
    lock = threading.Lock()
    starts = cycle(range(0, len(items), max(1, len(items) // 37)))  # 37: prime, past 32 clients

    def pick() -> Item:
        if not hasattr(local, "items"):
            with lock:
                start = next(starts)
            local.items = cycle([*items[start:], *items[:start]])
        item: Item = next(local.items)
        return item

    return pick
