"""The Blog Authorship Corpus as published (one XML-like file per blogger).

Before, a data dir holding the published ``blogs/<id>.<gender>.<age>.<industry>.<sign>.xml``
files trained nothing: the reader knew only the project's ``blogs.jsonl.gz`` conversion.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from training.data.blog_xml import MAX_POSTS, POST_CHARS, blog_object, decode_blog
from training.data.blogs import read_blogs

BLOG = """<Blog>

<date>31,May,2004</date>
<post>

       Well, everyone got up &amp; going.   urlLink &nbsp; It's raining.

</post>

<date>29,May,2004</date>
<post>
    a < b and <b>bold</i> text
</post>

<date>28,May,2004</date>
<post>

</post>

<date>27,May,2004</date>

<date>26,May,2004</date>
<post>
    no closing tag here
<date>25,May,2004</date>
<post>
    last one
</post>
</Blog>
"""


def write_blogs(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
    return folder


def test_posts_are_read_like_the_jsonl_conversion() -> None:
    blogger = blog_object("1000331.female.37.indUnk.Leo.xml", BLOG)
    assert {key: blogger[key] for key in ("id", "gender", "age", "industry", "sign")} == {
        "id": "1000331",
        "gender": "female",
        "age": 37,
        "industry": "indUnk",
        "sign": "Leo",
    }
    # Whitespace collapsed, entities and urlLink kept, an empty post and a date without a post
    # skipped, a post without its closing tag ends at the next date.
    assert [post["text"] for post in blogger["posts"]] == [
        "Well, everyone got up &amp; going. urlLink &nbsp; It's raining.",
        "a < b and <b>bold</i> text",
        "no closing tag here",
        "last one",
    ]


def test_posts_are_capped_and_cut() -> None:
    text = "".join(f"<date>1,May,2004</date><post>{'x' * 2000}</post>" for _ in range(15))
    posts = blog_object("1.male.25.Arts.Leo.xml", f"<Blog>{text}</Blog>")["posts"]
    assert len(posts) == MAX_POSTS and {len(post["text"]) for post in posts} == {POST_CHARS}


def test_a_file_that_is_not_utf8_is_read_as_latin_1_like_the_jsonl() -> None:
    # blogs.jsonl.gz holds "isn\x92t" (U+0092) where the published file had Windows-1252's 0x92.
    assert decode_blog(b"caf\xe9 isn\x92t") == "caf\u00e9 isn\x92t"
    assert decode_blog("\ufeffcaf\u00e9".encode()) == "caf\u00e9"


@pytest.mark.parametrize("folder", ["blogs", "blog-authorship/blogs", "blog-authorship", "."])
def test_read_blogs_reads_a_folder_of_xml_files(folder, tmp_path) -> None:
    files = {
        "1000331.female.37.indUnk.Leo.xml": BLOG.encode("cp1252"),
        "1000866.male.17.Student.Libra.xml": b"<Blog><post>caf\xe9 time</post></Blog>",
        "1000900.female.55.Arts.Leo.xml": b"<Blog><post>an age outside the bands</post></Blog>",
        "1001.unknown.20.Arts.Leo.xml": b"<Blog><post>x</post></Blog>",  # no such gender
        "1002.male.20.Arts.xml": b"<Blog><post>x</post></Blog>",  # a field short
        "1003.male.20.Arts.Leo.xml": b"<Blog><date>1,May,2004</date></Blog>",  # no post
        "notes.txt": b"not a blog",
    }
    write_blogs(tmp_path / folder, files)
    data = read_blogs(tmp_path)
    assert [blogger.blogger_id for blogger in data.bloggers] == ["1000331", "1000866", "1000900"]
    assert data.bloggers[1].posts == ("caf\u00e9 time",)
    assert [blogger.age_band for blogger in data.bloggers] == ["thirties+", "teen", "thirties+"]
    assert data.bad_lines == 3
    assert any(
        sample.startswith("1002.male.20.Arts.xml: file name") for sample in data.bad_line_samples
    )
    assert len(read_blogs(tmp_path, max_examples=2).bloggers) == 2


def test_a_jsonl_corpus_is_preferred_and_nothing_is_a_clear_error(tmp_path) -> None:
    write_blogs(tmp_path / "blogs", {"1.male.25.Arts.Leo.xml": b"<Blog><post>x</post></Blog>"})
    (tmp_path / "blogs.jsonl").write_text(
        '{"id": "9", "gender": "female", "age": 30, "posts": [{"text": "y"}]}\n'
    )
    assert [blogger.blogger_id for blogger in read_blogs(tmp_path).bloggers] == ["9"]
    (tmp_path / "blogs-elsewhere").mkdir()
    with pytest.raises(FileNotFoundError, match=r"<id>\.<gender>\.<age>"):
        read_blogs(tmp_path / "blogs-elsewhere")
