"""Microseconds per ``encode`` of each model's tokenizer file against its ASCII twin
(:mod:`serving.ascii_normalizers`), on the bench's request bodies (benchmarks only)::

    PYTHONPATH=. python -m loadtests.tokenizer_cost --model-repo model_repo [--repeat 3]

For each model of the repo (latest version, first tokenizer file of its spec) it times the
texts of the model's mixload body (``loadtests.mixload.PAYLOADS``; a model without one:
a fixed English sentence), encoded without special tokens as the gateway encodes them, file
and twin alternately, and prints both and their ratio. A tokenizer without a twin (its
normalizer changes ASCII text in every step) prints one figure.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from loadtests.mixload import PAYLOADS
from serving.ascii_normalizers import ascii_twin
from serving.contract import ASSETS_DIR, version_dirs
from serving.spec import SPEC_FILE, load_spec
from serving.tokenization import load_tokenizer

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def texts_of(value: Any) -> list[str]:
    """Every string inside a request body (dicts and lists walked in order)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in texts_of(item)]
    if isinstance(value, list):
        return [text for item in value for text in texts_of(item)]
    return []


def microseconds(tokenizer: Tokenizer, texts: Sequence[str], seconds: float) -> float:
    """Mean wall-clock microseconds to encode all of ``texts`` once (a loop of ~``seconds``)."""
    rounds, started = 0, time.perf_counter()
    while True:
        for text in texts:
            tokenizer.encode(text, add_special_tokens=False)
        rounds += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return elapsed / rounds * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    """Print file and twin microseconds per body for each model of ``--model-repo``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repo", type=Path, default=Path("model_repo"))
    parser.add_argument("--seconds", type=float, default=1.0, help="per timing")
    parser.add_argument("--repeat", type=int, default=3, help="alternating timings per model")
    args = parser.parse_args(argv)
    for folder in sorted(path for path in args.model_repo.iterdir() if path.is_dir()):
        versions = version_dirs(folder)
        assets = versions[max(versions)] / ASSETS_DIR if versions else folder
        if not (assets / SPEC_FILE).is_file():
            continue
        spec = load_spec(assets / SPEC_FILE)
        tokenizer = load_tokenizer(assets / spec.inputs[0].tokenizer)
        texts = [text for text in texts_of(PAYLOADS.get(folder.name, SENTENCE)) if text]
        twin = ascii_twin(tokenizer)
        file_us, twin_us = [], []
        for _ in range(args.repeat):
            file_us.append(microseconds(tokenizer, texts, args.seconds))
            if twin is not None:
                twin_us.append(microseconds(twin, texts, args.seconds))
        chars = sum(len(text) for text in texts)
        line = f"{folder.name:12} {len(texts)} texts, {chars} chars: file {min(file_us):.1f} us"
        if twin_us:
            line += f", ASCII twin {min(twin_us):.1f} us ({min(twin_us) / min(file_us):.2f}x)"
        else:
            line += " (no twin)"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
