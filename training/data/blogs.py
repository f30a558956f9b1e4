"""Read the Blog Authorship Corpus (one JSON object per blogger) and its income-group proxy."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from serving.contract import INCOME_GROUPS
from training.data.blog_xml import blog_object, decode_blog, xml_files, xml_folder
from training.data.errors import DataError, MissingDataError

BLOGS_FOLDER = "blog-authorship"
BLOGS_FILE = "blogs.jsonl.gz"
INCOME_GROUPS_FILE = Path(__file__).resolve().parents[1] / "income_groups.yaml"
GZIP_MAGIC = b"\x1f\x8b"
GENDERS = ("female", "male")  # index = gender target; "male" is the positive class


@dataclass(frozen=True)
class Blogger:
    """One blogger: the profile targets and their posts (texts only)."""

    blogger_id: str
    gender: str
    age: int
    industry: str
    posts: tuple[str, ...]
    income_group: int | None = None  # a real per-author label, when the data has one

    @property
    def age_band(self) -> str:
        """The corpus's age band (13-17, 23-27, 33-48), used to stratify the split."""
        return "teen" if self.age < 20 else "twenties" if self.age < 30 else "thirties+"


@dataclass
class BlogData:
    """Bloggers read from the corpus plus what went wrong while reading it."""

    bloggers: list[Blogger] = field(default_factory=list)
    bad_lines: int = 0
    bad_line_samples: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def record_bad_line(self, line_number: int, reason: str) -> None:
        """Count a line that could not be used and keep a few reasons for the report."""
        self.record_bad(f"line {line_number}", reason)

    def record_bad(self, where: str, reason: str) -> None:
        """Count a line or file (``where``) that could not be used, keeping a few reasons."""
        self.bad_lines += 1
        if len(self.bad_line_samples) < 5:
            self.bad_line_samples.append(f"{where}: {reason[:120]}")


def blogs_path(data_dir: Path) -> Path:
    """The corpus file in a data dir (``blog-authorship/blogs.jsonl.gz``), or the path itself."""
    if data_dir.is_file():
        return data_dir
    candidates = [data_dir / BLOGS_FOLDER / BLOGS_FILE, data_dir / BLOGS_FILE]
    candidates.append(data_dir / BLOGS_FILE.removesuffix(".gz"))  # an uncompressed copy
    return next((path for path in candidates if path.is_file()), candidates[0])


def _raw_lines(path: Path, data: BlogData) -> Iterator[bytes]:
    # Compressed or not by the gzip magic number, not the name: a plain JSONL file named
    # .gz read no blogger ("Not a gzipped file"), a gzipped one named .jsonl only bad lines.
    try:
        with path.open("rb") as head:
            compressed = head.read(2) == GZIP_MAGIC
    except OSError as error:  # unreadable: a message naming the file, not a traceback
        raise DataError(f"cannot read {path}: {error.strerror or error}") from error
    opener = gzip.open if compressed else open
    with opener(path, "rb") as stream:
        try:
            yield from stream
        except (EOFError, OSError, zlib.error) as error:  # a truncated or corrupt archive
            data.record_bad_line(-1, f"file ends early: {error}")


def parse_blogger(raw: Any) -> Blogger:
    """A Blogger from one decoded JSON object; raises ValueError if a field is unusable."""
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    gender, age, posts = raw.get("gender"), raw.get("age"), raw.get("posts")
    if gender not in GENDERS:
        raise ValueError(f"gender {gender!r}")
    if not isinstance(age, int) or isinstance(age, bool) or not 1 <= age <= 120:
        raise ValueError(f"age {age!r}")
    if not isinstance(posts, list):
        raise ValueError("posts is not a list")
    texts = tuple(
        post["text"].strip()
        for post in posts
        if isinstance(post, dict) and isinstance(post.get("text"), str) and post["text"].strip()
    )
    if not texts:
        raise ValueError("no post text")
    income = raw.get("income_group")
    if income is not None and (
        not isinstance(income, int) or isinstance(income, bool) or not 0 <= income < INCOME_GROUPS
    ):  # JSON true is no group (Python's bool is an int: it was read as group 1)
        raise ValueError(f"income_group {income!r}")
    return Blogger(
        blogger_id=str(raw.get("id", "")),
        gender=gender,
        age=age,
        industry=str(raw.get("industry") or "indUnk"),
        posts=texts,
        income_group=income,
    )


def read_blogs(data_dir: Path, max_examples: int | None = None) -> BlogData:
    """Read bloggers from the corpus; malformed lines and bad encodings are counted, skipped.

    Reads ``blogs.jsonl.gz`` (:func:`blogs_path`), else the published per-blogger XML files
    (:func:`read_blog_xml`). Raises :class:`MissingDataError` if neither is there.
    """
    path = blogs_path(data_dir)
    if not path.is_file():
        folder = xml_folder(data_dir) if data_dir.is_dir() else None
        if folder is None:
            raise MissingDataError(
                f"no Blog Authorship corpus: {path} is not a file, and {data_dir} holds no "
                "<id>.<gender>.<age>.<industry>.<sign>.xml files (nor its blogs/ folder)"
            )
        return read_blog_xml(folder, max_examples)
    data = BlogData(files=[path.name])
    for line_number, line in enumerate(_raw_lines(path, data), start=1):
        if max_examples is not None and len(data.bloggers) >= max_examples:
            break
        if not line.strip():
            continue
        try:  # utf-8-sig: a byte-order mark before the first object is no JSON error
            data.bloggers.append(parse_blogger(json.loads(line.decode("utf-8-sig"))))
        except UnicodeDecodeError as error:
            data.record_bad_line(line_number, f"bad encoding: {error}")
        except ValueError as error:  # json.JSONDecodeError is a ValueError too
            data.record_bad_line(line_number, str(error))
    return data


def read_blog_xml(folder: Path, max_examples: int | None = None) -> BlogData:
    """Read the corpus as published (``training.data.blog_xml``), one blogger per file.

    A file whose name or fields are unusable (``parse_blogger``'s checks: gender, age, no post
    text) or that cannot be read is counted and sampled like a bad JSONL line, by file name.
    """
    data = BlogData(files=[f"{folder.name}/*.xml"])
    for path in xml_files(folder):
        if max_examples is not None and len(data.bloggers) >= max_examples:
            break
        try:
            raw = blog_object(path.name, decode_blog(path.read_bytes()))
            data.bloggers.append(parse_blogger(raw))
        except OSError as error:
            data.record_bad(path.name, f"cannot read: {error.strerror or error}")
        except ValueError as error:
            data.record_bad(path.name, str(error))
    return data


def split_bloggers(
    bloggers: Sequence[Blogger], validation_fraction: float, seed: int
) -> tuple[list[Blogger], list[Blogger]]:
    """Split by blogger into (train, validation), stratified on gender and age band."""
    strata: dict[tuple[str, str], list[Blogger]] = defaultdict(list)
    for blogger in bloggers:
        strata[(blogger.gender, blogger.age_band)].append(blogger)
    rng = random.Random(seed)
    train: list[Blogger] = []
    validation: list[Blogger] = []
    seen = 0
    for key in sorted(strata):
        group = strata[key]
        rng.shuffle(group)
        # Rounding the running total (not each stratum) keeps small strata from all rounding
        # down to an empty validation set.
        cut = round((seen + len(group)) * validation_fraction) - round(seen * validation_fraction)
        seen += len(group)
        validation.extend(group[:cut])
        train.extend(group[cut:])
    return train, validation


@dataclass(frozen=True)
class IncomeGroups:
    """The industry -> income group proxy of ``income_groups.yaml``."""

    industry_group: dict[str, int]
    no_label: frozenset[str]
    groups: list[dict[str, Any]]  # {"group", "label", "rule"}: the income head's labels
    note: str

    def group_of(self, blogger: Blogger) -> int | None:
        """The blogger's income group: a real label if present, else the proxy, else None."""
        if blogger.income_group is not None:
            return blogger.income_group
        if blogger.industry in self.no_label:
            return None
        return self.industry_group.get(blogger.industry)


def load_income_groups(path: Path = INCOME_GROUPS_FILE) -> IncomeGroups:
    """Read and check the income-group config (10 groups, each industry in one group)."""
    config = yaml.safe_load(path.read_text())
    industry_group: dict[str, int] = {}
    groups: list[dict[str, Any]] = []
    for entry in config["groups"]:
        group = int(entry["group"])
        groups.append({"group": group, "label": str(entry["label"]), "rule": str(entry["rule"])})
        for industry in entry["industries"]:
            if industry in industry_group:
                raise ValueError(f"{path}: {industry} is in two income groups")
            industry_group[industry] = group
    if sorted(entry["group"] for entry in groups) != list(range(INCOME_GROUPS)):
        raise ValueError(f"{path}: groups must be 0..{INCOME_GROUPS - 1}, each once")
    return IncomeGroups(
        industry_group=industry_group,
        no_label=frozenset(config.get("no_income_label", [])),
        groups=sorted(groups, key=lambda entry: int(entry["group"])),
        note=str(config["note"]),
    )
