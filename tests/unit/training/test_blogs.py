"""The Blog Authorship reader, the split by blogger and the income-group proxy config."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from training.data.blogs import (
    Blogger,
    blogs_path,
    load_income_groups,
    read_blogs,
    split_bloggers,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "blogs" / "blogs.jsonl"
CORPUS_INDUSTRIES = {
    "Accounting", "Advertising", "Agriculture", "Architecture", "Arts", "Automotive", "Banking",
    "Biotech", "BusinessServices", "Chemicals", "Communications-Media", "Consulting",
    "Construction", "Education", "Engineering", "Environment", "Fashion", "Government",
    "HumanResources", "Internet", "InvestmentBanking", "Law", "LawEnforcement-Security",
    "Manufacturing", "Maritime", "Marketing", "Military", "Museums-Libraries", "Non-Profit",
    "Publishing", "RealEstate", "Religion", "Science", "Sports-Recreation", "Technology",
    "Telecommunications", "Tourism", "Transportation", "Student", "indUnk",
}  # fmt: skip


def test_reader_skips_and_counts_malformed_and_badly_encoded_lines():
    data = read_blogs(FIXTURE)
    assert len(data.bloggers) == 12
    assert data.bad_lines == 3  # broken JSON, latin-1 bytes, unknown gender
    assert any("bad encoding" in sample for sample in data.bad_line_samples)
    first = data.bloggers[0]
    assert (first.gender, first.age, first.industry) == ("female", 15, "Student")
    assert len(first.posts) == 3 and "urlLink" in first.posts[0]


def test_reader_reads_gzip_and_survives_a_truncated_archive(tmp_path):
    compressed = gzip.compress(FIXTURE.read_bytes())
    full = tmp_path / "blog-authorship" / "blogs.jsonl.gz"
    full.parent.mkdir()
    full.write_bytes(compressed)
    assert blogs_path(tmp_path) == full
    assert len(read_blogs(tmp_path).bloggers) == 12
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(compressed[: len(compressed) // 2])
    data = read_blogs(truncated)
    assert len(data.bloggers) < 12
    assert any("file ends early" in sample for sample in data.bad_line_samples)


def test_max_examples_caps_the_bloggers_read():
    assert len(read_blogs(FIXTURE, max_examples=5).bloggers) == 5


def _blogger(index: int) -> Blogger:
    return Blogger(
        blogger_id=str(index),
        gender=("female", "male")[index % 2],
        age=(15, 25, 40)[index % 3],
        industry="Arts",
        posts=("hello",),
    )


def test_split_is_by_blogger_stratified_and_repeatable():
    bloggers = [_blogger(index) for index in range(120)]
    train, validation = split_bloggers(bloggers, 0.25, seed=5)
    assert len(validation) == 30 and len(train) == 90
    assert not {b.blogger_id for b in train} & {b.blogger_id for b in validation}
    strata = {(b.gender, b.age_band) for b in validation}
    assert len(strata) == 6  # every gender x age band is represented
    again, _ = split_bloggers(bloggers, 0.25, seed=5)
    assert [b.blogger_id for b in again] == [b.blogger_id for b in train]


def test_income_config_covers_every_industry_with_ten_documented_groups():
    income = load_income_groups()
    assert [group["group"] for group in income.groups] == list(range(10))
    assert all(group["label"] and group["rule"] for group in income.groups)
    assert set(income.industry_group) | income.no_label == CORPUS_INDUSTRIES
    assert income.no_label == {"Student", "indUnk"}
    assert "proxy" in income.note.lower()


@pytest.mark.parametrize(
    ("industry", "override", "expected"),
    [("Law", None, 9), ("Tourism", None, 0), ("Student", None, None), ("indUnk", None, None),
     ("Engineering", 2, 2), ("Student", 4, 4), ("Unheard-Of", None, None)],
)  # fmt: skip
def test_income_group_of_uses_override_then_proxy_else_no_label(industry, override, expected):
    blogger = Blogger("1", "male", 30, industry, ("text",), income_group=override)
    assert load_income_groups().group_of(blogger) == expected


def test_income_config_rejects_an_industry_in_two_groups(tmp_path):
    text = (Path(__file__).resolve().parents[3] / "training" / "income_groups.yaml").read_text()
    broken = tmp_path / "groups.yaml"
    broken.write_text(text.replace("[Law, InvestmentBanking]", "[Law, InvestmentBanking, Arts]"))
    with pytest.raises(ValueError, match="two income groups"):
        load_income_groups(broken)
