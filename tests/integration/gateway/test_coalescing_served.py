"""Request coalescing under a real gunicorn gevent worker, real gRPC and the tiny models:
requests of different lengths answered in merged (right-padded) calls get the answers they
get alone, and the metrics show the calls were merged.

"The same" is: the same labels, order and fields, and numbers equal to float32 rounding. A
batch of another shape runs TensorFlow's kernels in another order (oneDNN says so at start-up),
so a score can move by an ulp, as it does with the model server's own batching or TF Serving's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from serving.gateway.launcher import RunningGateway
from tests.support.model_server import ModelServerHandle
from tests.support.served_gateway import served_gateway

pytestmark = pytest.mark.slow
BOUND = 60.0  # seconds; a bound on waits, never an assertion
CLIENTS = 24
ROUNDS = 4
FLOAT32_REL = 1e-5  # a few float32 ulps (2**-23 = 1.2e-7 each)
SENTENCES = [
    "Mary moved to the kitchen.",
    "John went to the garden.",
    "Daniel travelled to the office.",
    "Sandra journeyed to the bathroom.",
    "Mary went back to the hallway.",
]
# (path, body): lengths differ within each model, so merged calls pad
PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    *[
        ("/v1/qa", {"article": " ".join(SENTENCES[:count]), "question": "Where is Mary?"})
        for count in range(1, len(SENTENCES) + 1)
    ],
    *[
        ("/v1/similarity", {"pairs": [{"text_a": SENTENCES[i], "text_b": " ".join(SENTENCES[i:])}]})
        for i in range(len(SENTENCES))
    ],
    ("/v1/profile", {"posts": SENTENCES[:2]}),
    ("/v1/profile", {"posts": SENTENCES}),
    ("/v1/profile", {"posts": ["Short."]}),
]


@pytest.fixture(scope="module")
def gateway(tiny_repo: Path, tiny_model_server: ModelServerHandle) -> Iterator[RunningGateway]:
    settings = {"GATEWAY_LOG_LEVEL": "WARNING"}
    with served_gateway(tiny_repo, settings, workers=1, server=tiny_model_server) as running:
        yield running


def assert_same(got: Any, want: Any) -> None:
    """Equal JSON, numbers within float32 rounding."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for key in want:
            assert_same(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for got_item, want_item in zip(got, want, strict=True):
            assert_same(got_item, want_item)
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=FLOAT32_REL, abs=1e-7)
    else:
        assert got == want


def _calls_and_merged(url: str) -> tuple[float, float]:
    """All models' backend calls and the requests that shared one, from ``/metrics``."""
    text = requests.get(f"{url}/metrics", timeout=BOUND).text
    totals = []
    for name in ("gateway_batch_size_count", "gateway_merged_requests_total"):
        totals.append(sum(float(v) for v in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)))
    return totals[0], totals[1]


def test_merged_requests_answer_as_they_do_alone(gateway: RunningGateway) -> None:
    def answer(index: int) -> Any:
        path, body = PAYLOADS[index % len(PAYLOADS)]
        response = requests.post(gateway.url + path, json=body, timeout=BOUND)
        assert response.status_code == 200, response.text
        return response.json()

    alone = [answer(index) for index in range(len(PAYLOADS))]  # one at a time: never merged
    calls_before, merged_before = _calls_and_merged(gateway.url)
    assert (calls_before, merged_before) == (len(PAYLOADS), 0.0)
    with ThreadPoolExecutor(CLIENTS) as pool:
        indices = list(range(len(PAYLOADS) * ROUNDS))
        concurrent = list(pool.map(answer, indices))
    for index, body in zip(indices, concurrent, strict=True):
        assert_same(body, alone[index % len(PAYLOADS)])
    calls, merged = _calls_and_merged(gateway.url)
    # 24 clients on one worker: some requests waited for a call in flight and shared the next
    assert merged > 0
    assert calls - calls_before < len(indices)
