"""Read the bAbI v1.1 task files: (story so far, question, answer) triples for all 20 tasks."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.data.errors import DataError, MissingDataError
from training.data.text import text_lines

BABI_FOLDER = "babi-v1.1-en"
TASK_FILE_PATTERN = re.compile(r"^qa(\d+)_.*_train\.txt$")


@dataclass(frozen=True)
class BabiExample:
    """One question with its story (the statements before it) and its one-label answer."""

    task: int
    story_key: str  # identifies the story, so a split never puts one story on both sides
    statements: tuple[str, ...]
    question: str
    answer: str  # multi-word answers such as "football,apple" stay one label
    # The supporting facts: indices into ``statements`` (0 = the story's first statement), in
    # the file's order; line numbers that name no statement of the story are dropped.
    supporting: tuple[int, ...] = ()

    @property
    def article(self) -> str:
        """The story as one text, statements in order."""
        return " ".join(self.statements)


@dataclass
class BabiData:
    """Examples read from the task files plus what went wrong while reading them."""

    examples: list[BabiExample] = field(default_factory=list)
    bad_lines: int = 0
    bad_line_samples: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def task_files(folder: Path) -> list[tuple[int, Path]]:
    """The ``qaN_*_train.txt`` files in folder as (task number, path), by task number.

    Raises :class:`MissingDataError` if folder is not a directory.
    """
    if not folder.is_dir():
        raise MissingDataError(f"no bAbI data: {folder} is not a directory")
    found = []
    for path in folder.iterdir():
        match = TASK_FILE_PATTERN.match(path.name)
        if match and path.is_file():  # a folder named like a task file is no task file
            found.append((int(match.group(1)), path))
    return sorted(found)


def babi_folder(data_dir: Path) -> Path:
    """The bAbI folder inside a data dir, or the dir itself if it holds the task files."""
    nested = data_dir / BABI_FOLDER
    return nested if nested.is_dir() else data_dir


def read_babi(data_dir: Path, max_examples: int | None = None) -> BabiData:
    """Read every task file under data_dir; ``max_examples`` caps the questions per task."""
    folder = babi_folder(data_dir)
    files = task_files(folder)
    if not files:
        # The published archive holds the tasks in variant folders (en, en-10k, ...): name them.
        variants = sorted(sub.name for sub in folder.iterdir() if sub.is_dir() and task_files(sub))
        hint = f"; pick one of its folders {', '.join(variants)}" if variants else ""
        raise MissingDataError(f"no qaN_*_train.txt files in {folder}{hint}")
    data = BabiData()
    for task, path in files:
        data.files.append(path.name)
        parse_task_lines(task, text_lines(path), data, max_examples)
    return data


def answer_labels(data: BabiData) -> list[str]:
    """The answer head's labels: the distinct answers read, sorted.

    Raises :class:`DataError` (naming the files, questions and bad lines) for fewer than two:
    a softmax needs two labels (the serving spec refuses one), and without this check a file
    whose every question had the same answer, or none was read, ended in pydantic's traceback.
    """
    answers = sorted({example.answer for example in data.examples})
    if len(answers) < 2:
        raise DataError(
            f"qa: {len(answers)} distinct answer(s) {answers} in {len(data.examples)} questions "
            f"read from {', '.join(data.files)} ({data.bad_lines} bad lines); the answer head "
            "needs at least 2"
        )
    return answers


def parse_task_lines(
    task: int, lines: Iterable[str], data: BabiData, max_examples: int | None = None
) -> None:
    """Append the examples of one task file's lines to data, counting malformed lines."""
    statements: list[str] = []
    statement_of_line: dict[int, int] = {}  # bAbI line number -> index into statements
    story_number = 0
    taken = 0
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        number_text, _, rest = line.strip().partition(" ")
        # ASCII digits only: str.isdigit also accepts "²", which int() then refuses.
        if (
            not number_text.isascii()
            or not number_text.isdigit()
            or not rest.strip()
            or "\ufffd" in line
        ):
            _record_bad_line(data, task, line_number, line)
            continue
        if int(number_text) == 1:  # numbering restarts: a new story begins
            statements = []
            statement_of_line = {}
            story_number += 1
        if "\t" not in rest:
            if rest.strip().endswith("?"):  # a question that lost its answer
                _record_bad_line(data, task, line_number, line)
            else:
                statement_of_line[int(number_text)] = len(statements)
                statements.append(rest.strip())
            continue
        fields = rest.split("\t")
        # Every bAbI question ends with "?": a statement holding a stray TAB ("Mary went\thome.")
        # was read as the question "Mary went" with the answer "home.".
        if len(fields) < 2 or not fields[0].strip().endswith("?") or not fields[1].strip():
            _record_bad_line(data, task, line_number, line)
            continue
        if max_examples is not None and taken >= max_examples:
            continue
        taken += 1
        data.examples.append(
            BabiExample(
                task=task,
                story_key=f"{task}:{story_number}",
                statements=tuple(statements),
                question=fields[0].strip(),
                answer=fields[1].strip(),
                supporting=supporting_facts(
                    fields[2] if len(fields) > 2 else "", statement_of_line
                ),
            )
        )


def supporting_facts(field: str, statement_of_line: dict[int, int]) -> tuple[int, ...]:
    """Statement indices of a question's third TAB field (bAbI line numbers, e.g. ``"2 1"``).

    Numbers that are not a statement line of the current story (a question's line, a line
    that was skipped as malformed, a number past the question) and non-numbers are dropped.
    """
    numbers = [int(word) for word in field.split() if word.isascii() and word.isdigit()]
    return tuple(statement_of_line[n] for n in numbers if n in statement_of_line)


def _record_bad_line(data: BabiData, task: int, line_number: int, line: str) -> None:
    data.bad_lines += 1
    if len(data.bad_line_samples) < 5:  # a few samples make the report actionable
        data.bad_line_samples.append(f"qa{task} line {line_number}: {line[:80]!r}")


def split_by_task(
    examples: Sequence[BabiExample], validation_fraction: float, seed: int
) -> tuple[list[BabiExample], list[BabiExample]]:
    """Split examples into (train, validation), stratified by task and grouped by story.

    Whole stories go to one side: questions of one story share its statements, so a split by
    question would let validation questions see stories the model trained on.
    """
    stories: dict[int, dict[str, list[BabiExample]]] = defaultdict(dict)
    for example in examples:
        stories[example.task].setdefault(example.story_key, []).append(example)
    rng = random.Random(seed)
    train: list[BabiExample] = []
    validation: list[BabiExample] = []
    for task in sorted(stories):
        keys = sorted(stories[task])
        rng.shuffle(keys)
        wanted = validation_fraction * sum(len(group) for group in stories[task].values())
        taken = 0
        for index, key in enumerate(keys):
            group = stories[task][key]
            if taken < wanted and index < len(keys) - 1:  # keep a story for training
                validation.extend(group)
                taken += len(group)
            else:
                train.extend(group)
    return train, validation


def repeat_tasks(examples: Sequence[BabiExample], repeats: Mapping[str, int]) -> list[BabiExample]:
    """``examples`` with every example of task ``qaN`` present ``repeats["qaN"]`` times.

    Oversampling for the training split only: a task the joint model learns slowly (path
    finding, qa19, still improves after 60 passes over its own examples) gets more passes
    per epoch at the cost of those extra examples alone. Keys are ``"qa1"`` to ``"qa20"``,
    values integers >= 1 (1: as read); ValueError otherwise. Copies follow their originals.
    """
    if not isinstance(repeats, Mapping):  # hparams come from JSON: {"qa19": 3}
        raise ValueError(f"task_repeats must be a mapping such as {{'qa19': 3}}, got {repeats!r}")
    counts: dict[int, int] = {}
    for key, value in repeats.items():
        match = re.fullmatch(r"qa(\d+)", key)
        if match is None or not 1 <= int(match.group(1)) <= 20:
            raise ValueError(f"task_repeats keys are qa1 to qa20, got {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"task_repeats[{key!r}] must be an integer >= 1, got {value!r}")
        counts[int(match.group(1))] = value
    return [copy for example in examples for copy in [example] * counts.get(example.task, 1)]
