"""Read the Blog Authorship Corpus as published: one XML-like file per blogger.

The public ``blogs.zip`` (Schler et al. 2006) holds ``blogs/<id>.<gender>.<age>.<industry>.
<sign>.xml`` files, e.g. ``1000331.female.37.indUnk.Leo.xml``, each a ``<Blog>`` of
``<date>``/``<post>`` pairs. They are not well-formed XML (unescaped ``&`` and ``<`` in posts,
bytes that are not UTF-8), so posts are found with a tolerant pattern instead of an XML parser.
Each file becomes the same object as a line of ``blogs.jsonl.gz`` (the project's conversion,
``/work/shared/datasets/README.md``): its first :data:`MAX_POSTS` non-empty posts, whitespace
collapsed, HTML entities and ``urlLink`` left in, each cut at :data:`POST_CHARS` characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

XML_FOLDERS = ("blogs", "blog-authorship/blogs", "blog-authorship", ".")
MAX_POSTS = 12
POST_CHARS = 1500
# <id>.<gender>.<age>.<industry>.<sign>.xml; industries have no dot ("Communications-Media").
FILE_NAME = re.compile(r"^(\d+)\.([A-Za-z]+)\.(\d+)\.([^.]+)\.([^.]+)\.xml$")
# A post ends at its closing tag, or (a missing one) at the next post, date or the blog's end.
POST = re.compile(r"<post>(.*?)(?=</post>|<post>|<date>|</blog>|\Z)", re.IGNORECASE | re.DOTALL)


def xml_folder(data_dir: Path) -> Path | None:
    """The folder of per-blogger ``*.xml`` files in a data dir (or the dir itself), if any."""
    for name in XML_FOLDERS:
        folder = data_dir / name
        if folder.is_dir() and any(FILE_NAME.match(path.name) for path in folder.iterdir()):
            return folder
    return None


def xml_files(folder: Path) -> Iterator[Path]:
    """The folder's ``*.xml`` files in name order (a fixed order: the split is seeded)."""
    yield from sorted(path for path in folder.glob("*.xml") if path.is_file())


def decode_blog(raw: bytes) -> str:
    """A file's text: UTF-8 if it is, else Latin-1, byte for byte (never fails).

    Many published files hold Windows-1252 bytes (curly quotes, accented letters): dropping
    such a blogger, as a JSONL line that is not UTF-8 is, would lose much of the corpus.
    Latin-1, not Windows-1252, because the project's ``blogs.jsonl.gz`` conversion, which the
    models trained on, decoded so: its posts hold U+0092 where the file had the byte 0x92.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def blog_object(name: str, text: str) -> dict[str, Any]:
    """A blogger object like a ``blogs.jsonl.gz`` line, from a file's name and text.

    Raises ValueError naming the problem for a name that is not
    ``<id>.<gender>.<age>.<industry>.<sign>.xml``; the fields' values are checked by
    ``training.data.blogs.parse_blogger`` as for the JSONL.
    """
    match = FILE_NAME.match(name)
    if match is None:
        raise ValueError("file name is not <id>.<gender>.<age>.<industry>.<sign>.xml")
    blogger_id, gender, age, industry, sign = match.groups()
    posts = [" ".join(post.split()) for post in POST.findall(text)]
    kept = [post[:POST_CHARS] for post in posts if post][:MAX_POSTS]
    return {
        "id": blogger_id,
        "gender": gender.lower(),
        "age": int(age),
        "industry": industry,
        "sign": sign,
        "total_posts": len(posts),
        "posts": [{"text": post} for post in kept],
    }
