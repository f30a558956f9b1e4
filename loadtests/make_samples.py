"""Write the small request sample files the load tests draw from, once, from the real datasets.

``python -m loadtests.make_samples [--data-dir ../shared/datasets] [--out loadtests/data]``
writes ``qa.jsonl`` (bAbI stories and questions of all 20 tasks), ``profile.jsonl`` (real
bloggers with their posts) and ``similarity.jsonl`` (STS Benchmark pairs). A fixed seed makes
the files reproducible; they are committed so a load test never needs the datasets.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SEED = 20261126
QUESTIONS_PER_TASK = 20
BLOGGERS = 40
SIMILARITY_PAIRS = 500
KEEP_PROBABILITY = 0.005  # of a blogger line: ~87 of 17,453, spread over the whole file
STS_FIELDS = 7
BABI_LINE = re.compile(r"^(\d+) (.*)$")
Record = dict[str, Any]


def babi_questions(path: Path) -> Iterator[Record]:
    """Yield each question of a bAbI file with the story so far as its article."""
    task = int(path.name.split("_")[0].removeprefix("qa"))
    story: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = BABI_LINE.match(line.strip())
        if match is None:
            continue
        number, text = int(match.group(1)), match.group(2)
        if number == 1:
            story = []
        if "\t" in text:
            question, answer = text.split("\t")[:2]
            yield {
                "task": task,
                "article": " ".join(story),
                "question": question.strip(),
                "answer": answer,
            }
        else:
            story.append(text.strip())


def qa_samples(data_dir: Path, rng: random.Random) -> list[Record]:
    """A fixed number of random questions from each of the 20 bAbI tasks."""
    samples: list[Record] = []
    for path in sorted((data_dir / "babi-v1.1-en").glob("qa*_train.txt")):
        questions = list(babi_questions(path))
        samples.extend(rng.sample(questions, min(QUESTIONS_PER_TASK, len(questions))))
    return samples


def profile_samples(data_dir: Path, rng: random.Random) -> list[Record]:
    """Random real bloggers (half female, half male) with all their posts."""
    path = data_dir / "blog-authorship" / "blogs.jsonl.gz"
    wanted = {"female": BLOGGERS // 2, "male": BLOGGERS - BLOGGERS // 2}
    samples: list[Record] = []
    # Keep a blogger with a small probability, so the sample spreads over the whole file.
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if rng.random() > KEEP_PROBABILITY:
                continue
            try:
                blogger = json.loads(line)
            except json.JSONDecodeError:
                continue
            posts = [post["text"] for post in blogger.get("posts", []) if post.get("text")]
            gender = blogger.get("gender")
            if posts and wanted.get(gender, 0) > 0:
                wanted[gender] -= 1
                samples.append({"gender": gender, "age": blogger.get("age"), "posts": posts})
            if not any(wanted.values()):
                break
    return samples


def similarity_samples(data_dir: Path, rng: random.Random) -> list[Record]:
    """Random STS Benchmark pairs from the train and dev files, with their score in [0, 1]."""
    pairs: list[Record] = []
    for name in ("sts-train.csv", "sts-dev.csv"):
        text = (data_dir / "stsbenchmark" / name).read_text(encoding="utf-8")
        for line in text.splitlines():
            fields = line.split("\t")
            if len(fields) < STS_FIELDS:
                continue
            score, text_a, text_b = fields[4], fields[5], fields[6]
            pairs.append({"text_a": text_a, "text_b": text_b, "score": float(score) / 5})
    return rng.sample(pairs, min(SIMILARITY_PAIRS, len(pairs)))


def write_jsonl(path: Path, records: Sequence[Record]) -> None:
    """Write one JSON object per line."""
    path.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))


def main(argv: Sequence[str] | None = None) -> None:
    """Read the datasets and write the three sample files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    builders = {"qa": qa_samples, "profile": profile_samples, "similarity": similarity_samples}
    for name, build in builders.items():
        records = build(args.data_dir, rng)
        write_jsonl(args.out / f"{name}.jsonl", records)
        print(f"{name}: {len(records)} records -> {args.out / f'{name}.jsonl'}")


if __name__ == "__main__":
    main()
