"""Per-step figures, SLO verdicts, the plot, and the tensors of direct backend calls."""

from __future__ import annotations

import random

import numpy as np

from loadtests.payloads import PayloadFactory, Samples
from loadtests.plot import plot_summary
from loadtests.slo import Objectives, load_objectives, violations
from loadtests.summary import StepRecorder
from loadtests.tensors import ModelInputs
from serving.contract import MODEL_NAMES, SIGNATURES


def recorded() -> StepRecorder:
    recorder = StepRecorder(steps=[1, 4], step_seconds=10, warmup_seconds=2)
    recorder.record(1.0, "/v1/qa", 999.0, failed=False)  # warm-up: ignored
    for index in range(100):
        recorder.record(2.0 + index * 0.05, "/v1/qa", float(index + 1), failed=False)
        recorder.record(2.0 + index * 0.05, "grpc qa", 1.0, failed=False)
        recorder.record(12.0 + index * 0.05, "/v1/qa", 50.0, failed=index == 0)
    recorder.record(25.0, "/v1/qa", 1.0, failed=True)  # after the last step: ignored
    return recorder


def test_summary_per_step_and_overhead() -> None:
    summary = recorded().summary()
    first, second = summary["steps"]
    assert first["users"] == 1 and second["users"] == 4
    qa = first["endpoints"]["/v1/qa"]
    assert qa["requests"] == 100 and qa["failures"] == 0 and qa["rps"] == 12.5
    assert qa["p50_ms"] == 50.5 and qa["p99_ms"] > qa["p95_ms"] > qa["p50_ms"]
    assert second["endpoints"]["/v1/qa"]["failures"] == 1
    overhead = summary["gateway_minus_backend_p50_ms"]
    assert overhead == [
        {
            "users": 1,
            "model": "qa",
            "gateway_p50_ms": 50.5,
            "backend_p50_ms": 1.0,
            "difference_ms": 49.5,
        }
    ]


def test_slo_violations() -> None:
    summary = recorded().summary()
    assert load_objectives().failure_ratio == 0.0
    broken = violations(summary, Objectives(p95_ms={"/v1/qa": 100.0}))
    assert broken == ["/v1/qa at 4 users: failure ratio 0.0100 > 0.0"]
    broken = violations(summary, Objectives(failure_ratio=0.5, p95_ms={"/v1/qa": 10.0}))
    assert len(broken) == 2 and "p95" in broken[0]
    assert violations(summary, Objectives(failure_ratio=0.5, max_users=1)) == []
    stuck = {"steps": [{"users": 8, "seconds": 10, "endpoints": {}}]}
    assert violations(stuck, Objectives()) == [
        "no request finished at 8 users (server stuck or too slow?)"
    ]


def test_plot_writes_a_png(tmp_path) -> None:
    path = plot_summary(recorded().summary(), tmp_path / "latency.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backend_tensors_match_the_signatures(tiny_repo) -> None:
    factory = PayloadFactory(Samples.load(), random.Random(5))
    for name in MODEL_NAMES:
        inputs = ModelInputs.from_repo(tiny_repo, name)
        assert inputs.version == 1
        tensors = inputs.encode(getattr(factory, name)())
        assert set(tensors) == set(SIGNATURES[name].inputs)
        rows = {array.shape[0] for array in tensors.values()}
        assert len(rows) == 1 and all(array.dtype == np.int32 for array in tensors.values())
    batch = {"instances": [{"posts": ["a b"]}, {"posts": ["c", "d e f"]}]}
    assert ModelInputs.from_repo(tiny_repo, "profile").encode(batch)["post_ids"].shape[0] == 2
