"""Read sentence-pair similarity data: STS Benchmark, SICK and MRPC, scores scaled to [0, 1],
and the train/validation split the ``similarity`` task uses (``load_pairs``)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.data.errors import MissingDataError
from training.data.text import parse_score, text_lines

STS_FOLDER = "stsbenchmark"
SICK_FOLDER = "sick"
MRPC_FOLDER = "mrpc"
STS_TRAIN_FILE = "sts-train.csv"
STS_DEV_FILE = "sts-dev.csv"
SICK_FILES = ("SICK_train.txt", "SICK_trial.txt")
MRPC_FILE = "msr_paraphrase_train.txt"
STS_FIELDS = 7  # genre, file, year, id, score, sentence1, sentence2 (extra columns dropped)


@dataclass(frozen=True)
class SentencePair:
    """Two sentences and their similarity in [0, 1] (1 = same meaning)."""

    left: str
    right: str
    score: float
    source: str


@dataclass
class PairData:
    """Pairs read from one or more files plus what went wrong while reading them."""

    pairs: list[SentencePair] = field(default_factory=list)
    bad_lines: int = 0
    bad_line_samples: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def record_bad_line(self, source: str, line_number: int, line: str) -> None:
        """Count a malformed line and keep a few samples for the report."""
        self.bad_lines += 1
        if len(self.bad_line_samples) < 5:
            self.bad_line_samples.append(f"{source} line {line_number}: {line[:80]!r}")


LineParser = Callable[[list[str]], SentencePair | None]


def _parse_file(path: Path, parser: LineParser, data: PairData, skip_header: bool) -> None:
    data.files.append(path.name)
    for line_number, line in enumerate(text_lines(path), start=1):
        if not line.strip() or (skip_header and line_number == 1):
            continue
        pair = None if "\ufffd" in line else _safe_parse(parser, line.split("\t"))
        if pair is None:
            data.record_bad_line(path.name, line_number, line)
        else:
            data.pairs.append(pair)


def _safe_parse(parser: LineParser, fields: list[str]) -> SentencePair | None:
    try:
        return parser(fields)
    except (ValueError, IndexError):
        return None


def _pair(left: str, right: str, score: float, source: str) -> SentencePair | None:
    """A pair, or None (a bad line) for an empty side or a score off the scale or not finite.

    Scores arrive scaled to [0, 1]: 7.5 on STS's 0-5 scale is 1.5 and is refused, as are
    infinities (``1e400``); an empty or malformed score already failed ``parse_score``.
    """
    left, right = left.strip(), right.strip()
    if not left or not right or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        return None
    return SentencePair(left=left, right=right, score=score, source=source)


def parse_sts_fields(fields: list[str]) -> SentencePair | None:
    """An STS Benchmark row: keep the first 7 TAB fields, score 0-5 scaled to [0, 1]."""
    if len(fields) < STS_FIELDS:
        return None
    return _pair(fields[5], fields[6], parse_score(fields[4]) / 5.0, "sts")


def parse_sick_fields(fields: list[str]) -> SentencePair | None:
    """A SICK row: id, sentence A, sentence B, relatedness 1-5 (scaled to [0, 1]), label."""
    if len(fields) < 4 or not fields[0].strip().isdigit():  # skips a header if present
        return None
    return _pair(fields[1], fields[2], (parse_score(fields[3]) - 1.0) / 4.0, "sick")


def parse_mrpc_fields(fields: list[str]) -> SentencePair | None:
    """An MRPC row: label (1 = paraphrase), id1, id2, sentence 1, sentence 2."""
    if len(fields) < 5 or fields[0].strip() not in {"0", "1"}:
        return None
    # A binary paraphrase label is a coarse score: paraphrases 1.0, the rest 0.4 (related
    # news sentences on the same event, which STS annotators typically score around 2/5).
    score = 1.0 if fields[0].strip() == "1" else 0.4
    return _pair(fields[3], fields[4], score, "mrpc")


def read_pairs(paths: Iterable[Path], parser: LineParser, skip_header: bool = False) -> PairData:
    """Read pairs from files with one of the ``parse_*_fields`` functions."""
    data = PairData()
    for path in paths:
        _parse_file(path, parser, data, skip_header)
    return data


def read_sts(path: Path) -> PairData:
    """Read one STS Benchmark file (``sts-train.csv`` or ``sts-dev.csv``)."""
    return read_pairs([path], parse_sts_fields)


def read_sick(folder: Path) -> PairData:
    """Read the SICK files present in folder (train and trial)."""
    return read_pairs(
        [folder / name for name in SICK_FILES if (folder / name).is_file()], parse_sick_fields
    )


def read_mrpc(folder: Path) -> PairData:
    """Read the MRPC training file (it starts with a byte-order mark)."""
    path = folder / MRPC_FILE
    return read_pairs([path] if path.is_file() else [], parse_mrpc_fields)


def merge(parts: Sequence[PairData]) -> PairData:
    """One PairData holding the pairs, counts and file names of all parts."""
    merged = PairData()
    for part in parts:
        merged.pairs.extend(part.pairs)
        merged.bad_lines += part.bad_lines
        merged.bad_line_samples.extend(part.bad_line_samples[: 5 - len(merged.bad_line_samples)])
        merged.files.extend(part.files)
    return merged


def split_pairs(
    pairs: Sequence[SentencePair], validation_fraction: float, seed: int
) -> tuple[list[SentencePair], list[SentencePair]]:
    """Shuffle with a fixed seed and cut off a validation share (for a missing dev file)."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    cut = round(len(shuffled) * validation_fraction)
    return shuffled[cut:], shuffled[:cut]


def load_pairs(
    data_dir: Path, extra: Sequence[str], fraction: float, seed: int
) -> tuple[list[SentencePair], list[SentencePair], dict[str, Any]]:
    """Train and validation pairs: STS train (+ extras) and STS dev, carving what is missing."""
    folder = data_dir / STS_FOLDER if (data_dir / STS_FOLDER).is_dir() else data_dir
    train_file, dev_file = folder / STS_TRAIN_FILE, folder / STS_DEV_FILE
    if not train_file.is_file() and not dev_file.is_file():
        raise MissingDataError(f"neither {STS_TRAIN_FILE} nor {STS_DEV_FILE} in {folder}")
    parts: list[PairData] = []
    if train_file.is_file() and dev_file.is_file():
        sts_train, sts_dev = read_sts(train_file), read_sts(dev_file)
        train, validation = list(sts_train.pairs), list(sts_dev.pairs)
        parts += [sts_train, sts_dev]
        split = f"train: {STS_TRAIN_FILE}, validation: {STS_DEV_FILE}"
    else:  # one file only: carve validation from it with the fixed seed
        only = read_sts(train_file if train_file.is_file() else dev_file)
        train, validation = split_pairs(only.pairs, fraction, seed)
        parts.append(only)
        split = f"{only.files[0]} only: {fraction:.0%} carved out for validation (seed {seed})"
    readers = {
        "sick": lambda: read_sick(data_dir / SICK_FOLDER),
        "mrpc": lambda: read_mrpc(data_dir / MRPC_FOLDER),
    }
    for name in extra:
        extra_data = readers[name]()
        if not extra_data.files:  # asked for by the preset: training without it would hide that
            raise MissingDataError(f"extra_data {name!r}: none of its files in {data_dir / name}")
        train += extra_data.pairs
        parts.append(extra_data)
    everything = merge(parts)
    summary = {
        "split": split,
        "files": everything.files,
        "bad_lines": everything.bad_lines,
        "bad_line_samples": everything.bad_line_samples,
        "train_pairs": len(train),
        "train_sources": dict(Counter(pair.source for pair in train)),
        "validation_pairs": len(validation),
    }
    return train, validation, summary
