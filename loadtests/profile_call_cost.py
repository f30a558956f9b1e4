"""CPU per call of profile SavedModels on the gateway's tensors, several versions side by side.

Each ``LABEL=PATH`` is a profile version folder (``repo/profile/<version>``) loaded into this
process. Typical requests (``loadtests.payloads``' profile instances, fixed seed: 1-50 posts
of a blogger of ``loadtests/data/profile.jsonl``) are encoded by the gateway's runtime of the
first version (``loadtests.tensors``; rows padded to the longest, as a batched call) into
calls of 1, 4 and 8 rows. The models take turns, in alternating order each round, so load
from elsewhere hits them alike. CPU is ``time.process_time`` (every thread of the process:
TF's own pools included) per call; the ratio column compares with the first model.

Usage (a benchmark, not a test: the machine's load goes with the figures)::

    PYTHONPATH=. python -m loadtests.profile_call_cost \\
        before=/work/final5/model_repo/profile/1 after=/work/sparse-repo/profile/2
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from loadtests.payloads import PayloadFactory, Samples
from loadtests.tensors import ModelInputs
from serving.contract import SIGNATURE_NAME

Call = Callable[..., dict[str, Any]]


def parse_models(items: Sequence[str]) -> dict[str, Path]:
    """``LABEL=PATH`` arguments -> label -> version folder (raises ValueError on a bad one)."""
    models: dict[str, Path] = {}
    for item in items:
        label, _, path = item.partition("=")
        if not label or not path or not Path(path, "saved_model.pb").is_file():
            raise ValueError(f"expected LABEL=VERSION_FOLDER with a saved_model.pb, got {item!r}")
        models[label] = Path(path)
    return models


def typical_batches(version: Path, sizes: Sequence[int], calls: int) -> dict[int, list[Any]]:
    """Batch size -> ``calls`` int32 ``[size, length]`` id tensors of typical instances."""
    inputs = ModelInputs.from_repo(version.parent.parent, version.parent.name, int(version.name))
    factory = PayloadFactory(Samples.load(), random.Random(0))
    batches: dict[int, list[Any]] = {}
    for size in sizes:
        payloads = [
            {"instances": [factory.profile_instance() for _ in range(size)]} for _ in range(calls)
        ]
        batches[size] = [tf.constant(inputs.encode(payload)["post_ids"]) for payload in payloads]
    return batches


def cpu_per_call(call: Call, batches: Sequence[Any]) -> float:
    """Mean CPU milliseconds of one call over the batches."""
    start = time.process_time()
    for batch in batches:
        call(post_ids=batch)
    return (time.process_time() - start) * 1000.0 / len(batches)


def largest_difference(calls: dict[str, Call], batches: Sequence[Any]) -> dict[str, float]:
    """Each model's largest absolute output difference from the first model's."""
    first, *others = calls
    expected = [calls[first](post_ids=batch) for batch in batches]
    differences: dict[str, float] = {}
    for label in others:
        differences[label] = 0.0
        for batch, want in zip(batches, expected, strict=True):
            got = calls[label](post_ids=batch)
            for name, value in want.items():
                difference = float(np.abs(got[name].numpy() - value.numpy()).max())
                differences[label] = max(differences[label], difference)
    return differences


def main(argv: Sequence[str] | None = None) -> int:
    """Print ms CPU per call per model and batch size, the ratios, and the load."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("models", nargs="+", help="LABEL=profile version folder")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=16, help="calls per batch size per round")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args(argv)
    models = parse_models(args.models)
    batches = typical_batches(next(iter(models.values())), args.sizes, args.calls)
    for size, tensors in batches.items():
        lengths = [int(np.count_nonzero(t.numpy(), axis=1).mean()) for t in tensors]
        print(f"batch {size}: mean real ids per row {np.mean(lengths):.0f}")
    calls: dict[str, Call] = {
        label: tf.saved_model.load(str(path)).signatures[SIGNATURE_NAME]
        for label, path in models.items()
    }
    every_batch = [tensor for tensors in batches.values() for tensor in tensors]
    for label, difference in largest_difference(calls, every_batch).items():
        print(f"largest |output difference| {label} vs {next(iter(calls))}: {difference:.3g}")
    for call in calls.values():  # warm up: tracing, first allocations
        cpu_per_call(call, batches[args.sizes[-1]][:2])
    print(f"load before: {os.getloadavg()}")
    cpu: dict[tuple[str, int], list[float]] = {}
    for index in range(args.rounds):
        order = list(calls) if index % 2 == 0 else list(reversed(calls))
        for label in order:
            for size in args.sizes:
                cpu.setdefault((label, size), []).append(cpu_per_call(calls[label], batches[size]))
    print(f"load after: {os.getloadavg()}")
    baseline = next(iter(calls))
    for size in args.sizes:
        for label in calls:
            mean = float(np.mean(cpu[label, size]))
            ratio = mean / float(np.mean(cpu[baseline, size]))
            spread = f"{min(cpu[label, size]):.2f}-{max(cpu[label, size]):.2f}"
            print(
                f"batch {size} {label}: {mean:.2f} ms CPU per call (rounds {spread}), x{ratio:.3f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
