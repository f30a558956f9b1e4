"""Read SICK for natural language inference: premise, hypothesis, entailment label, relatedness.

SICK (Marelli et al. 2014) files are TAB-separated without a header (a header line, if
present, is skipped as a bad line): ``pair_ID, sentence_A, sentence_B, relatedness_score
(1-5), entailment_label``. Sentence A is the premise and sentence B the hypothesis, as in the
SemEval-2014 task 1 definition ("does A entail B?").
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.data.errors import MissingDataError
from training.data.text import parse_score, text_lines

SICK_FILES = ("SICK_train.txt", "SICK_trial.txt")
LABELS = ("ENTAILMENT", "NEUTRAL", "CONTRADICTION")
RELATEDNESS_RANGE = (1.0, 5.0)
FIELDS = 5
MAX_BAD_SAMPLES = 5


@dataclass(frozen=True)
class NliPair:
    """One SICK pair: ``label`` is an index into :data:`LABELS`; relatedness in [1, 5]."""

    pair_id: str
    premise: str
    hypothesis: str
    relatedness: float
    label: int
    source: str  # the file it came from


@dataclass
class NliData:
    """Pairs read from one or more files plus what went wrong while reading them."""

    pairs: list[NliPair] = field(default_factory=list)
    bad_lines: int = 0
    bad_line_samples: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def record_bad_line(self, source: str, line_number: int, line: str) -> None:
        """Count a malformed line and keep a few samples for the model card."""
        self.bad_lines += 1
        if len(self.bad_line_samples) < MAX_BAD_SAMPLES:
            self.bad_line_samples.append(f"{source} line {line_number}: {line[:80]!r}")


def parse_line(line: str, source: str) -> NliPair | None:
    """A SICK row as an :class:`NliPair`, or None if it is malformed.

    Malformed: not exactly 5 TAB fields (trailing empty ones aside), a non-numeric id (e.g. a
    header), an empty sentence, relatedness not a number in [1, 5], a label other than
    :data:`LABELS`, or bytes that were not UTF-8 (decoded as U+FFFD).
    """
    # Trailing TABs (empty extra columns, as spreadsheet exports write) are not fields; other
    # extra columns are refused (SICK.txt has 12, in another order).
    fields = line.rstrip().split("\t")
    if len(fields) != FIELDS or "\ufffd" in line:
        return None
    pair_id, premise, hypothesis, relatedness, label = (part.strip() for part in fields)
    if not pair_id.isdigit() or not premise or not hypothesis or label not in LABELS:
        return None
    try:
        score = parse_score(relatedness)
    except ValueError:
        return None
    if not RELATEDNESS_RANGE[0] <= score <= RELATEDNESS_RANGE[1]:  # also rejects NaN
        return None
    return NliPair(pair_id, premise, hypothesis, score, LABELS.index(label), source)


def read_files(paths: Iterable[Path]) -> NliData:
    """Read SICK files; blank lines are skipped, malformed ones counted and sampled."""
    data = NliData()
    for path in paths:
        data.files.append(path.name)
        # Undecodable bytes become U+FFFD so that the line is counted as bad, not fatal.
        for line_number, line in enumerate(text_lines(path), start=1):
            if not line.strip():
                continue
            pair = parse_line(line, path.name)
            if pair is None:
                data.record_bad_line(path.name, line_number, line)
            else:
                data.pairs.append(pair)
    return data


def read_sick(folder: Path) -> NliData:
    """Read ``SICK_train.txt`` and ``SICK_trial.txt`` from folder (those present).

    Raises :class:`MissingDataError` (a ``FileNotFoundError``) if neither file is there.
    """
    paths = [folder / name for name in SICK_FILES if (folder / name).is_file()]
    if not paths:
        raise MissingDataError(f"neither of {', '.join(SICK_FILES)} in {folder}")
    return read_files(paths)


def stratified_split(
    pairs: Sequence[NliPair], validation_fraction: float, seed: int
) -> tuple[list[NliPair], list[NliPair]]:
    """Split into (train, validation) with the same label mix in both.

    Rule: pairs are grouped by label in file order; each group is shuffled with
    ``random.Random(seed)`` (groups in :data:`LABELS` order, one generator) and its first
    ``round(len(group) * validation_fraction)`` pairs go to validation. Both lists come back
    in the original file order, so the split depends only on the data, fraction and seed.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    rng = random.Random(seed)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        groups[pair.label].append(index)
    chosen: set[int] = set()
    for label in sorted(groups):
        members = groups[label]
        rng.shuffle(members)
        chosen.update(members[: round(len(members) * validation_fraction)])
    train = [pair for index, pair in enumerate(pairs) if index not in chosen]
    validation = [pair for index, pair in enumerate(pairs) if index in chosen]
    return train, validation
