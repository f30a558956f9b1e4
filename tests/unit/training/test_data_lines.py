"""Regression tests: every line-based reader splits and decodes its files alike.

Before, bAbI and nli's SICK reader did not drop a UTF-8 byte-order mark (the first line, often
a story's line 1 or the first pair, was a bad line), nor did the blog reader (the first blogger
a JSON error); and bAbI, STS, SICK and MRPC cut lines at U+2028, U+0085 or a form feed too
(``str.splitlines``), so a sentence holding one made two bad lines.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from training.data import sick, sts
from training.data.babi import read_babi
from training.data.blogs import parse_blogger, read_blogs
from training.data.errors import DataError
from training.data.text import parse_score, text_lines

BOM = "\ufeff".encode()
STS_ROW = "g\tf\t2012\t1\t2.5\tA man{sep} sings.\tA man is singing."
SICK_ROW = "1\tA man{sep} sings.\tA man is singing.\t4.5\tENTAILMENT"
MRPC_ROW = "1\t11\t12\tA man{sep} sings.\tA man is singing."
Reader = Callable[[Path], list[str]]


def sts_lefts(folder: Path) -> list[str]:
    return [pair.left for pair in sts.read_sts(folder / "sts-dev.csv").pairs]


def sick_lefts(folder: Path) -> list[str]:
    return [pair.premise for pair in sick.read_sick(folder).pairs]


def sick_pair_lefts(folder: Path) -> list[str]:
    return [pair.left for pair in sts.read_sick(folder).pairs]


def mrpc_lefts(folder: Path) -> list[str]:
    return [pair.left for pair in sts.read_mrpc(folder).pairs]


PAIR_READERS = [
    ("sts-dev.csv", STS_ROW, sts_lefts),
    ("SICK_train.txt", SICK_ROW, sick_lefts),
    ("SICK_train.txt", SICK_ROW, sick_pair_lefts),
    ("msr_paraphrase_train.txt", MRPC_ROW, mrpc_lefts),
]
IDS = ["sts", "nli-sick", "similarity-sick", "mrpc"]


@pytest.mark.parametrize(("name", "row", "read"), PAIR_READERS, ids=IDS)
def test_pair_readers_drop_a_byte_order_mark(name, row, read: Reader, tmp_path) -> None:
    (tmp_path / name).write_bytes(BOM + row.format(sep="").encode() + b"\r\n")
    assert read(tmp_path) == ["A man sings."]


@pytest.mark.parametrize("sep", ["\u2028", "\u0085", "\x0c", "\x1e"])
@pytest.mark.parametrize(("name", "row", "read"), PAIR_READERS, ids=IDS)
def test_a_unicode_separator_inside_a_sentence_ends_no_row(sep, name, row, read, tmp_path):
    (tmp_path / name).write_text(row.format(sep=sep) + "\n", encoding="utf-8")
    (left,) = read(tmp_path)
    assert left.startswith(f"A man{sep} sings")


def test_babi_drops_a_byte_order_mark(tmp_path) -> None:
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_bytes(
        BOM + b"1 Mary moved to the bathroom.\n2 Where is Mary?\tbathroom\t1\n"
    )
    data = read_babi(tmp_path)
    assert data.bad_lines == 0
    (example,) = data.examples
    assert example.statements == ("Mary moved to the bathroom.",) and example.supporting == (0,)


def test_babi_keeps_a_statement_with_a_unicode_separator(tmp_path) -> None:
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_text(
        "1 Mary moved to the\u2028bathroom.\n2 Where is Mary?\tbathroom\t1\n", encoding="utf-8"
    )
    data = read_babi(tmp_path)
    assert data.bad_lines == 0 and data.examples[0].supporting == (0,)


def test_text_lines_end_at_newlines_only(tmp_path) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(BOM + b"a\x0cb\r\nc\rd\n\xff\n")
    assert text_lines(path) == ["a\x0cb", "c", "d", "\ufffd"]


BLOGGER = {"id": "1", "gender": "male", "age": 25, "industry": "Arts", "posts": [{"text": "hi"}]}


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", ["blogs.jsonl", "blogs.jsonl.gz"])
def test_blogs_read_by_content_not_name_with_a_byte_order_mark(compress, name, tmp_path):
    raw = BOM + json.dumps(BLOGGER).encode() + b"\n" + json.dumps({**BLOGGER, "id": "2"}).encode()
    (tmp_path / name).write_bytes(gzip.compress(raw) if compress else raw)
    data = read_blogs(tmp_path / name)
    assert [blogger.blogger_id for blogger in data.bloggers] == ["1", "2"]
    assert data.bad_lines == 0


def test_an_income_group_of_true_is_refused() -> None:
    # bool is an int in Python: JSON true was read as income group 1.
    with pytest.raises(ValueError, match="income_group True"):
        parse_blogger({**BLOGGER, "income_group": True})
    assert parse_blogger({**BLOGGER, "income_group": 1}).income_group == 1


@pytest.mark.parametrize("score", ["0_5", "\u0663", "\u00b3", "nan", "1,5", "0x1", "", "3.5.1"])
@pytest.mark.parametrize(("name", "row", "read"), PAIR_READERS[:3], ids=IDS[:3])
def test_a_score_that_is_no_decimal_number_makes_a_bad_line(score, name, row, read, tmp_path):
    # float() read "0_5" as 5.0 and the Arabic-Indic "٣" as 3.0: wrong scores, kept silently.
    fields = row.format(sep="").split("\t")
    fields[4 if name.startswith("sts") else 3] = score
    good = row.format(sep="").replace("A man sings.", "A man dances.")
    (tmp_path / name).write_text("\t".join(fields) + "\n" + good + "\n", encoding="utf-8")
    assert read(tmp_path) == ["A man dances."]


@pytest.mark.parametrize(
    ("text", "value"), [("3.8", 3.8), (" 4 ", 4.0), (".5", 0.5), ("5e-1", 0.5)]
)
def test_parse_score_reads_decimal_numbers(text, value) -> None:
    assert parse_score(text) == pytest.approx(value)


def test_folders_named_like_data_files_are_not_read(tmp_path) -> None:
    # Each was an IsADirectoryError traceback: the readers took any path of that name.
    (tmp_path / "qa2_two-supporting-facts_train.txt").mkdir()
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_text(
        "1 Mary went home.\n2 Where is Mary?\thome\t1\n"
    )
    assert read_babi(tmp_path).files == ["qa1_single-supporting-fact_train.txt"]
    (tmp_path / "SICK_train.txt").mkdir()
    (tmp_path / "SICK_trial.txt").write_text(SICK_ROW.format(sep="") + "\n")
    assert sick_lefts(tmp_path) == sick_pair_lefts(tmp_path) == ["A man sings."]
    (tmp_path / "sts-dev.csv").mkdir()
    (tmp_path / "sts-train.csv").write_text(STS_ROW.format(sep="") + "\n")
    train, validation, summary = sts.load_pairs(tmp_path, [], 0.0, 1)
    assert [pair.left for pair in train] == ["A man sings."] and validation == []
    assert summary["files"] == ["sts-train.csv"]


def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path) -> None:
    with pytest.raises(DataError, match=f"cannot read {tmp_path}"):
        text_lines(tmp_path)
